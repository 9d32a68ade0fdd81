import type { Redis } from 'ioredis';

/**
 * Coalesces the commands sent to `client` during the current turn of the event loop into one
 * socket write: the socket is corked now and uncorked once the turn's microtasks have run.
 *
 * Why: on loopback most of a small command's cost is the write syscall, and a busy sidecar issues
 * many commands per turn (a burst of strict-mode decisions; every waiting lock round continuing on
 * the same batch of replies). ioredis' own auto-pipelining does the same coalescing but builds a
 * Pipeline per batch, which measured slower than one write per command here (bench/README.md).
 * Commands still go out in this turn, in order; only their writes are joined.
 */
export function batchWritesThisTurn(client: Redis): void {
  const stream = client.stream as Stream | undefined | null;
  // Not connected (ioredis rejects at once, writing nothing), or already corked this turn.
  if (stream === undefined || stream === null || !stream.writable || stream.writableCorked > 0) return;
  stream.cork();
  if (corked.push(stream) === 1) process.nextTick(uncorkAll);
}

type Stream = Redis['stream'];
const corked: Stream[] = [];

function uncorkAll(): void {
  // Taken out first: whatever happens below, the next turn starts with nothing corked.
  for (const s of corked.splice(0)) {
    try {
      s.uncork();
    } catch {
      // A stream destroyed meanwhile: ioredis fails its commands and reconnects on a new one.
    }
  }
}
