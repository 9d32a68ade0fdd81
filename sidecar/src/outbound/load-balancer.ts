import type { LoadBalancerAlgorithm } from '../../../lib/policy/upstream.ts';
import type { Endpoint } from './endpoint.ts';

/** A random number in [0, 1): injected so tests can pin the choices. */
export type Random = () => number;

export interface Picker {
  /**
   * The endpoint for the next try, or undefined when there is none. `avoid` holds endpoints this
   * call already tried: a retry goes elsewhere when anywhere else is available.
   */
  pick(endpoints: readonly Endpoint[], now: number, avoid?: ReadonlySet<Endpoint>): Endpoint | undefined;
}

/**
 * Which endpoints may get traffic: not ejected, and not already tried by this call. When that
 * leaves none, tried ones come back first, then ejected ones (a "panic" mode, as Envoy's): with
 * every endpoint ejected or tried, sending somewhere beats failing every call.
 */
export function candidates(endpoints: readonly Endpoint[], now: number, avoid?: ReadonlySet<Endpoint>): readonly Endpoint[] {
  let healthy = 0;
  for (const e of endpoints) if (!e.isEjected(now)) healthy++;
  const pool = healthy === 0 ? endpoints : healthy === endpoints.length ? endpoints : endpoints.filter((e) => !e.isEjected(now));
  if (!avoid || avoid.size === 0) return pool;
  const fresh = pool.filter((e) => !avoid.has(e));
  return fresh.length > 0 ? fresh : pool;
}

/** A new endpoint's share ramps from 10 % to 100 % over `slowStartMs` (linear, as Envoy's aggression 1). */
export function slowStartFactor(ep: Endpoint, now: number, slowStartMs: number): number {
  if (slowStartMs <= 0) return 1;
  const age = now - ep.addedAt;
  if (age >= slowStartMs) return 1;
  return Math.max(0.1, age / slowStartMs);
}

/**
 * LeastRequest: the power of two choices. Two distinct endpoints at random; the one with the lower
 * cost wins, cost = (tries in flight + 1) × latency EWMA, divided by its slow-start factor. Random
 * pairs keep many balancers from herding onto the same "best" endpoint; the latency weight sends
 * a slow endpoint little traffic until its queue on the fast ones is ten times longer.
 */
export class LeastRequestPicker implements Picker {
  private readonly slowStartMs: number;
  private readonly random: Random;

  constructor(slowStartMs: number, random: Random = Math.random) {
    this.slowStartMs = slowStartMs;
    this.random = random;
  }

  pick(endpoints: readonly Endpoint[], now: number, avoid?: ReadonlySet<Endpoint>): Endpoint | undefined {
    const pool = candidates(endpoints, now, avoid);
    if (pool.length <= 1) return pool[0];
    const i = Math.floor(this.random() * pool.length);
    let j = Math.floor(this.random() * (pool.length - 1));
    if (j >= i) j++;
    const a = pool[i] as Endpoint;
    const b = pool[j] as Endpoint;
    const unknown = typicalLatency(pool);
    return this.cost(a, now, unknown) <= this.cost(b, now, unknown) ? a : b;
  }

  private cost(e: Endpoint, now: number, unknownMs: number): number {
    return ((e.outstanding + 1) * (e.ewmaMs ?? unknownMs)) / slowStartFactor(e, now, this.slowStartMs);
  }
}

/** An endpoint without a latency yet counts as the fastest known one, so it gets tried soon. */
function typicalLatency(pool: readonly Endpoint[]): number {
  let min = Infinity;
  for (const e of pool) if (e.ewmaMs !== undefined && e.ewmaMs < min) min = e.ewmaMs;
  return min === Infinity ? 1 : Math.max(min, 0.001);
}

/**
 * RoundRobin: each endpoint in turn. During slow start an endpoint takes its turn only with
 * probability equal to its factor; a skipped turn passes to the next.
 */
export class RoundRobinPicker implements Picker {
  private next = 0;

  private readonly slowStartMs: number;
  private readonly random: Random;

  constructor(slowStartMs: number, random: Random = Math.random) {
    this.slowStartMs = slowStartMs;
    this.random = random;
  }

  pick(endpoints: readonly Endpoint[], now: number, avoid?: ReadonlySet<Endpoint>): Endpoint | undefined {
    const pool = candidates(endpoints, now, avoid);
    if (pool.length === 0) return undefined;
    for (let n = 0; n < pool.length; n++) {
      const e = pool[this.next++ % pool.length] as Endpoint;
      if (this.next >= 1 << 30) this.next = 0;
      if (this.slowStartMs <= 0 || this.random() < slowStartFactor(e, now, this.slowStartMs)) return e;
    }
    return pool[this.next++ % pool.length];
  }
}

export function createPicker(algorithm: LoadBalancerAlgorithm, slowStartMs: number, random?: Random): Picker {
  return algorithm === 'RoundRobin' ? new RoundRobinPicker(slowStartMs, random) : new LeastRequestPicker(slowStartMs, random);
}
