import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

export const PROTO_PATH = fileURLToPath(new URL('./user.proto', import.meta.url));

export interface User {
  id: string;
  name: string;
  email: string;
}

export interface Behavior {
  failCode: number;
  delayMs: number;
}

/** The generated-at-run-time clients, typed for the calls the example makes. */
export interface UserServiceClient extends grpc.Client {
  GetUser(req: { id: string }, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, user?: User) => void): grpc.ClientUnaryCall;
  GetUser(req: { id: string }, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, user?: User) => void): grpc.ClientUnaryCall;
  ListUsers(req: { limit: number }, options?: grpc.CallOptions): grpc.ClientReadableStream<User>;
}

export interface UserAdminClient extends grpc.Client {
  SetBehavior(req: Behavior, cb: (err: grpc.ServiceError | null, res?: Behavior) => void): grpc.ClientUnaryCall;
}

export function userServiceClient(target: string, options: grpc.ClientOptions = {}): UserServiceClient {
  return new (loadUserPackage().UserService)(target, grpc.credentials.createInsecure(), options) as unknown as UserServiceClient;
}

export function userAdminClient(target: string): UserAdminClient {
  return new (loadUserPackage().UserAdmin)(target, grpc.credentials.createInsecure()) as unknown as UserAdminClient;
}

/** The example package, loaded from user.proto (camelCase fields, as grpc-js clients use them). */
export function loadUserPackage(): { UserService: grpc.ServiceClientConstructor; UserAdmin: grpc.ServiceClientConstructor } {
  const def = protoLoader.loadSync(PROTO_PATH, { keepCase: false, longs: Number, defaults: true });
  const pkg = grpc.loadPackageDefinition(def).example as unknown as { UserService: grpc.ServiceClientConstructor; UserAdmin: grpc.ServiceClientConstructor };
  return pkg;
}

function userById(id: string): User {
  return { id, name: `User ${id}`, email: `user-${id}@example.com` };
}

/**
 * The UserService app: GetUser answers any id, ListUsers streams `limit` users. Its behavior
 * (fail every call with a status code, add latency) is switched at run time through
 * UserAdmin/SetBehavior, or at start from FAIL_CODE / DELAY_MS.
 */
export async function startUserService(opts: { host?: string; port?: number; behavior?: Partial<Behavior> } = {}): Promise<{
  port: number;
  behavior: Behavior;
  close(): Promise<void>;
}> {
  const pkg = loadUserPackage();
  const behavior: Behavior = { failCode: opts.behavior?.failCode ?? 0, delayMs: opts.behavior?.delayMs ?? 0 };
  const server = new grpc.Server();
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const failure = (): grpc.ServiceError | undefined => {
    if (behavior.failCode === 0) return undefined;
    return Object.assign(new Error(`UserService told to fail with ${grpc.status[behavior.failCode] ?? behavior.failCode}`), {
      code: behavior.failCode,
      details: `UserService told to fail with ${grpc.status[behavior.failCode] ?? behavior.failCode}`,
      metadata: new grpc.Metadata(),
    });
  };
  server.addService(pkg.UserService.service, {
    GetUser: async (call: grpc.ServerUnaryCall<{ id: string }, User>, cb: grpc.sendUnaryData<User>) => {
      if (behavior.delayMs > 0) await wait(behavior.delayMs);
      const err = failure();
      if (err) return cb(err);
      cb(null, userById(call.request.id || '1'));
    },
    ListUsers: async (call: grpc.ServerWritableStream<{ limit: number }, User>) => {
      if (behavior.delayMs > 0) await wait(behavior.delayMs);
      const err = failure();
      if (err) return void call.emit('error', err); // grpc-js: how a server stream ends with a status
      const limit = call.request.limit > 0 ? call.request.limit : 10;
      for (let i = 1; i <= limit && !call.cancelled; i++) {
        // Respect backpressure: a slow reader slows the stream instead of growing a buffer.
        if (!call.write(userById(String(i)))) await new Promise((r) => call.once('drain', r));
      }
      call.end();
    },
  });
  server.addService(pkg.UserAdmin.service, {
    SetBehavior: (call: grpc.ServerUnaryCall<Behavior, Behavior>, cb: grpc.sendUnaryData<Behavior>) => {
      behavior.failCode = call.request.failCode;
      behavior.delayMs = call.request.delayMs;
      cb(null, behavior);
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${opts.host ?? '127.0.0.1'}:${opts.port ?? 0}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port,
    behavior,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      setTimeout(() => server.forceShutdown(), 1_000).unref();
    }),
  };
}
