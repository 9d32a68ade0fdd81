import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/** The echo service (fixtures/echo.proto) that the proxy under test forwards to, plus what it saw. */
export interface Msg {
  payload: Buffer;
  text: string;
  count: number;
  delayMs: number;
  failCode: number;
  total: number;
}

export interface SeenCall {
  method: string;
  metadata: grpc.Metadata;
  /** The deadline the app was given (from the grpc-timeout the proxy passed on), or Infinity. */
  deadline: number;
  cancelled: boolean;
  ended: boolean;
}

export interface EchoApp {
  port: number;
  address: string;
  calls: SeenCall[];
  /** Messages the ServerStream handler has written so far (for flow-control checks). */
  streamed: { written: number };
  /** When set, every call fails with this status code (a broken app). */
  failAll: { code: number };
  close(): Promise<void>;
}

export interface EchoClient extends grpc.Client {
  Unary(req: Partial<Msg>, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientUnaryCall;
  ServerStream(req: Partial<Msg>, md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientReadableStream<Msg>;
  ClientStream(md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Msg) => void): grpc.ClientWritableStream<Partial<Msg>>;
  Bidi(md?: grpc.Metadata, opts?: grpc.CallOptions): grpc.ClientDuplexStream<Partial<Msg>, Msg>;
}

type SurfaceCall = grpc.ServerUnaryCall<Msg, Msg> | grpc.ServerWritableStream<Msg, Msg> | grpc.ServerReadableStream<Msg, Msg> | grpc.ServerDuplexStream<Msg, Msg>;

const PROTO = fileURLToPath(new URL('./fixtures/echo.proto', import.meta.url));
let ctor: grpc.ServiceClientConstructor | undefined;

function echoService(): grpc.ServiceClientConstructor {
  if (!ctor) {
    const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, defaults: true });
    ctor = (grpc.loadPackageDefinition(def).test as unknown as { echo: { Echo: grpc.ServiceClientConstructor } }).echo.Echo;
  }
  return ctor;
}

/** The echo service's definition, for tests that serve it with handlers of their own. */
export function echoServiceDefinition(): grpc.ServiceDefinition {
  return echoService().service;
}

export function echoClient(address: string, options: grpc.ClientOptions = {}): EchoClient {
  return new (echoService())(address, grpc.credentials.createInsecure(), options) as unknown as EchoClient;
}

function statusError(code: number, details: string, md = new grpc.Metadata()): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: md });
}

/** Response metadata echoes every `x-` request entry back (headers and trailers both) so tests see them relayed. */
function echoMetadata(md: grpc.Metadata, prefix: string): grpc.Metadata {
  const out = new grpc.Metadata();
  for (const [k, v] of Object.entries(md.getMap())) if (k.startsWith('x-')) out.set(`${prefix}${k.slice(2)}`, v as string);
  return out;
}

export async function startEchoApp(opts: { maxReceiveBytes?: number; port?: number } = {}): Promise<EchoApp> {
  const calls: SeenCall[] = [];
  const streamed = { written: 0 };
  const failAll = { code: 0 };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': opts.maxReceiveBytes ?? 64 << 20, 'grpc.max_send_message_length': -1 });
  const see = (method: string, call: SurfaceCall): SeenCall => {
    const d = call.getDeadline();
    const seen: SeenCall = { method, metadata: call.metadata, deadline: d instanceof Date ? d.getTime() : d, cancelled: false, ended: false };
    (call as grpc.ServerUnaryCall<Msg, Msg>).on('cancelled', () => (seen.cancelled = true));
    calls.push(seen);
    return seen;
  };
  const sleep = (ms: number, call: SurfaceCall) => new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    (call as grpc.ServerUnaryCall<Msg, Msg>).on('cancelled', () => {
      clearTimeout(t);
      resolve();
    });
  });
  server.addService(echoService().service, {
    Unary: async (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const seen = see('Unary', call);
      call.sendMetadata(echoMetadata(call.metadata, 'x-echo-'));
      if (call.request.delayMs > 0) await sleep(call.request.delayMs, call);
      if (call.cancelled) return;
      const code = call.request.failCode || failAll.code;
      seen.ended = true;
      if (code) return cb(statusError(code, `failing with ${code} as asked`, echoMetadata(call.metadata, 'x-trailer-')));
      cb(null, { ...call.request, text: `echo: ${call.request.text}` }, echoMetadata(call.metadata, 'x-trailer-'));
    },
    ServerStream: async (call: grpc.ServerWritableStream<Msg, Msg>) => {
      const seen = see('ServerStream', call);
      if (failAll.code) return void call.emit('error', statusError(failAll.code, 'failing'));
      for (let i = 0; i < call.request.count && !call.cancelled; i++) {
        if (call.request.delayMs > 0) await sleep(call.request.delayMs, call);
        streamed.written++;
        const ok = call.write({ ...call.request, count: i, delayMs: 0 });
        if (!ok) {
          await new Promise<void>((r) => {
            const done = () => {
              call.off('drain', done);
              call.off('cancelled', done);
              r();
            };
            call.on('drain', done);
            call.on('cancelled', done);
          });
        }
      }
      seen.ended = true;
      if (!call.cancelled) call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const seen = see('ClientStream', call);
      let total = 0;
      let count = 0;
      call.on('data', (m: Msg) => {
        total += m.payload.length;
        count++;
      });
      call.on('end', () => {
        seen.ended = true;
        if (failAll.code) return cb(statusError(failAll.code, 'failing'));
        cb(null, { payload: Buffer.alloc(0), total, count, text: 'summed', delayMs: 0, failCode: 0 });
      });
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      const seen = see('Bidi', call);
      call.on('data', (m: Msg) => call.write({ ...m, text: `echo: ${m.text}` }));
      call.on('end', () => {
        seen.ended = true;
        call.end();
      });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    address: `127.0.0.1:${port}`,
    calls,
    streamed,
    failAll,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => server.forceShutdown(), 500).unref();
    }),
  };
}
