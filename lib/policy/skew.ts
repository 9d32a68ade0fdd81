/**
 * Version skew between the operator and its sidecars. The policy: operator N serves sidecars N
 * and N-1 (a rolling upgrade of the operator happens before the workloads are restarted onto the
 * new sidecar image, and may never happen for a pod that is not restarted).
 *
 * - Kinds are negotiated: each sidecar names the kinds it compiles in its Hello
 *   (`supported_kinds`); the operator sends only those and reports the rest as skipped. A sidecar
 *   that names none predates negotiation and knows exactly BASELINE_KINDS.
 * - Fields are tolerated: a sidecar compiles the operator's documents with `tolerateSkew`, so an
 *   optional field a newer CRD added is ignored with a warning (sent back in the Ack) instead of
 *   the whole snapshot being refused. A person's policy file stays strict: there an unknown
 *   field is a typo. New fields must therefore be optional, with a default that keeps the
 *   previous behaviour — a field whose absence would be unsafe needs a new kind instead.
 * - Versions: the snapshot version names its content; the Redis key layout carries its own
 *   version in every key (lib/redis), so both versions of the sidecar agree on the keys.
 */
import { KINDS } from './types.ts';

/** The kinds every sidecar since the first release compiles: what a Hello without a list means. */
export const BASELINE_KINDS: readonly string[] = Object.freeze(['RateLimitPolicy', 'CircuitBreakerPolicy', 'TaskQueue', 'LeaderElection']);

/** The kinds this build compiles: what its sidecar declares. */
export const SUPPORTED_KINDS: readonly string[] = Object.freeze([...KINDS]);

/** The kinds a sidecar can take, from what its Hello declared (nothing: an older sidecar). */
export function negotiateKinds(declared: readonly string[] | undefined): ReadonlySet<string> {
  return new Set(declared && declared.length > 0 ? declared : BASELINE_KINDS);
}

/** A document whose kind is a string this build does not know (anything else is validated normally). */
export function isUnknownKind(doc: unknown): boolean {
  const kind = (doc as { kind?: unknown } | null)?.kind;
  return typeof kind === 'string' && kind !== '' && !(KINDS as readonly string[]).includes(kind);
}
