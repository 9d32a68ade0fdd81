import * as grpc from '@grpc/grpc-js';
import { echoServiceDefinition, type Msg } from '../grpc/echo-app.ts';

/** How one test endpoint behaves; tests change it while it runs. */
export interface Behaviour {
  delayMs: number;
  /** Answer every unary call with this status (0: answer OK). */
  failCode: number;
  /** Send response headers before failing, so the response has started (never retried). */
  headersFirst: boolean;
  /** grpc-retry-pushback-ms to send with a failure. */
  pushback?: string;
}

export interface TestEndpoint {
  address: string;
  name: string;
  behaviour: Behaviour;
  /** Unary calls it received, with the attempt number it was told. */
  calls: { previousAttempts: string | undefined; deadline: number }[];
  stop(): Promise<void>;
  kill(): void;
}

/**
 * A real grpc-js server of the echo service whose Unary answers `served by <name>`, slowly or
 * failing as asked; the other call kinds behave as echo-app's do, well enough for relaying.
 */
export async function startEndpoint(name: string, behaviour: Partial<Behaviour> = {}): Promise<TestEndpoint> {
  const b: Behaviour = { delayMs: 0, failCode: 0, headersFirst: false, ...behaviour };
  const calls: TestEndpoint['calls'] = [];
  const server = new grpc.Server();
  server.addService(echoServiceDefinition(), {
    Unary: (call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      const prev = call.metadata.get('grpc-previous-rpc-attempts')[0];
      const d = call.getDeadline();
      calls.push({ previousAttempts: prev === undefined ? undefined : String(prev), deadline: d instanceof Date ? d.getTime() : d });
      if (b.headersFirst) call.sendMetadata(new grpc.Metadata());
      const answer = () => {
        if (call.cancelled) return;
        if (b.failCode) {
          const md = new grpc.Metadata();
          if (b.pushback !== undefined) md.set('grpc-retry-pushback-ms', b.pushback);
          return cb(Object.assign(new Error(`${name} fails`), { code: b.failCode, details: `${name} fails`, metadata: md }));
        }
        cb(null, { ...call.request, text: `served by ${name}` });
      };
      if (b.delayMs > 0) setTimeout(answer, b.delayMs);
      else answer();
    },
    ServerStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < call.request.count; i++) call.write({ ...call.request, count: i });
      call.end();
    },
    ClientStream: (call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) => {
      let total = 0;
      let count = 0;
      call.on('data', (m: Msg) => { total += m.payload.length; count++; });
      call.on('end', () => cb(null, { payload: Buffer.alloc(0), total, count, text: name, delayMs: 0, failCode: 0 }));
    },
    Bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('data', (m: Msg) => call.write({ ...m, text: `${name}: ${m.text}` }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    address: `127.0.0.1:${port}`,
    name,
    behaviour: b,
    calls,
    kill: () => server.forceShutdown(),
    stop: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => { server.forceShutdown(); resolve(); }, 300).unref();
    }),
  };
}
