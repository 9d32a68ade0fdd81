import http2, { type IncomingHttpHeaders } from 'node:http2';

/** What a raw HTTP/2 client saw of one stream: for bad-input tests that grpc-js cannot produce. */
export interface RawResult {
  headers: IncomingHttpHeaders;
  trailers: IncomingHttpHeaders | undefined;
  body: Buffer;
  rstCode: number | undefined;
}

/** A length-prefixed gRPC message: flag byte, 4-byte big-endian length, payload. */
export function grpcFrame(payload: Buffer, { flag = 0, declaredLength = payload.length } = {}): Buffer {
  const prefix = Buffer.alloc(5);
  prefix[0] = flag;
  prefix.writeUInt32BE(declaredLength, 1);
  return Buffer.concat([prefix, payload]);
}

export const GRPC_HEADERS = { ':method': 'POST', 'content-type': 'application/grpc', te: 'trailers' } as const;

/**
 * Opens one stream with `headers`, writes `chunks`, ends the request unless `keepOpen`, and
 * resolves with what came back once the stream closes.
 */
export async function rawCall(address: string, headers: Record<string, string>, chunks: Buffer[] = [], { keepOpen = false } = {}): Promise<RawResult> {
  const session = http2.connect(`http://${address}`);
  session.on('error', () => {});
  try {
    return await new Promise<RawResult>((resolve, reject) => {
      const stream = session.request(headers, { endStream: false });
      let responseHeaders: IncomingHttpHeaders = {};
      let trailers: IncomingHttpHeaders | undefined;
      const body: Buffer[] = [];
      stream.on('response', (h) => (responseHeaders = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: Buffer) => body.push(c));
      stream.on('error', () => {});
      stream.on('close', () => resolve({ headers: responseHeaders, trailers, body: Buffer.concat(body), rstCode: stream.rstCode }));
      session.on('close', () => reject(new Error('session closed before the stream did')));
      for (const c of chunks) stream.write(c);
      if (!keepOpen) stream.end();
    });
  } finally {
    session.close();
  }
}

/** grpc-status of a raw result, from trailers or (trailers-only) from the headers. */
export function grpcStatusOf(r: RawResult): number | undefined {
  const v = r.trailers?.['grpc-status'] ?? r.headers['grpc-status'];
  return v === undefined ? undefined : Number(v);
}

export function grpcMessageOf(r: RawResult): string {
  return decodeURIComponent(String(r.trailers?.['grpc-message'] ?? r.headers['grpc-message'] ?? ''));
}
