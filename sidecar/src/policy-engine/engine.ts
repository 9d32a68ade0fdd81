import type { Clock } from '../../../lib/clock.ts';
import type { RequestAttributes } from '../../../lib/policy/match.ts';
import type { BreakerRule, Plan, RateLimitRule } from '../../../lib/policy/plan.ts';
import type { FencingRule } from '../../../lib/policy/fencing.ts';
import { parseFencingToken, type FencingOutcome } from '../fencing/fencing-decision.ts';
import type { TokenFence } from '../fencing/token-fence.ts';
import { ADMIT, ADMIT_PROBE, REJECT, type Admission } from '../breaker/circuit-breaker.ts';
import { boundedPartitionKey } from '../limit/bounded-key.ts';
import type { PriorityGate } from '../adaptive/priority-gate.ts';
import type { SlotRefusal } from '../breaker/bulkhead.ts';
import type { Decision } from '../limit/limiter.ts';
import type { CounterCell } from '../hot-metrics.ts';
import type { SidecarMetrics } from '../metrics.ts';
import { claimAll, type ClaimOutcome, type ConnectionLease, type QuotaClaim } from '../websocket/connection-quota.ts';
import { Chain, type BreakerStep, type CircuitChangeListener, type FenceStep, type GlobalConnectionQuotaFactory, type GlobalLimiterFactory, type LimitStep, type WebSocketStep } from './chain.ts';

/** How a forwarded call ended, as the listener saw it. */
export interface CallOutcome {
  status?: number;
  grpcCode?: number;
  connectError?: boolean;
  timedOut?: boolean;
}

export type Rejection =
  | { readonly reason: 'rate_limited'; readonly retryAfterMs: number; readonly rule: RateLimitRule; readonly decision: Decision }
  | { readonly reason: 'circuit_open' | 'bulkhead_full'; readonly retryAfterMs: number; readonly rule: BreakerRule }
  | { readonly reason: 'concurrency_limited'; readonly retryAfterMs: number; readonly rule: BreakerRule }
  | PriorityRejection
  | FencingRejection;

/** A request of a lower priority level refused to keep the rest of the limit for higher levels. */
export interface PriorityRejection {
  readonly reason: 'priority_shed';
  readonly retryAfterMs: number;
  readonly rule: RateLimitRule | BreakerRule;
  readonly level: string;
}

/** A request a FencingPolicy rule refused; `token` is what it carried, `newest` what the lock nodes hold. */
export interface FencingRejection {
  readonly reason: 'fencing_stale' | 'fencing_token_missing' | 'fencing_token_malformed' | 'fencing_unavailable';
  readonly retryAfterMs: number;
  readonly rule: FencingRule;
  readonly token?: number;
  readonly newest?: number;
}

/**
 * Leave to forward one call. The listener calls `done` with the outcome (or `cancel` when the
 * client left first) exactly once; `timeoutMs` is the breaker's call timeout, if any.
 */
export class Permit {
  readonly timeoutMs: number | undefined;
  private readonly step: BreakerStep | undefined;
  private readonly admission: Admission;
  private readonly holdsSlot: boolean;
  private readonly start: number;
  private readonly clock: Clock;
  private settled = false;

  constructor(clock: Clock, step: BreakerStep | undefined, admission: Admission, holdsSlot: boolean, start: number) {
    this.clock = clock;
    this.step = step;
    this.admission = admission;
    this.holdsSlot = holdsSlot;
    this.start = start;
    const rule = step?.rule;
    // A half-open probe that hangs must not hold the circuit half-open forever: it times out
    // (and so fails, and reopens) after the call timeout, or after openDuration when none is set.
    this.timeoutMs = rule && (rule.failure.timeoutMs ?? (admission === ADMIT_PROBE ? rule.openMs : undefined));
  }

  done(outcome: CallOutcome): void {
    if (this.settled) return;
    this.settled = true;
    const step = this.step;
    if (!step) return;
    const now = this.clock.now();
    if (this.holdsSlot) {
      // The limit learns before the slot is freed, so a waiter is admitted against the new limit.
      step.adaptive?.onSample(now, now - this.start, this.start, isOverload(outcome));
      step.bulkhead!.release();
    }
    step.breaker.onResult(now, this.admission, isFailure(step.rule, outcome), now - this.start);
  }

  cancel(): void {
    if (this.settled) return;
    this.settled = true;
    const step = this.step;
    if (!step) return;
    if (this.holdsSlot) step.bulkhead!.release();
    step.breaker.onCancel(this.admission);
  }
}

/** The app said it is too busy (or took too long): what makes an adaptive limit back off. */
export function isOverload(o: CallOutcome): boolean {
  if (o.timedOut) return true;
  if (o.grpcCode !== undefined && o.grpcCode !== 0) return o.grpcCode === 8 || o.grpcCode === 14;
  return o.status === 503 || o.status === 429;
}

export function isFailure(rule: BreakerRule, o: CallOutcome): boolean {
  const f = rule.failure;
  if (o.timedOut) return true;
  if (o.connectError) return f.connectErrors;
  if (o.grpcCode !== undefined && o.grpcCode !== 0) return f.grpcCodes[o.grpcCode] === 1;
  if (o.status !== undefined) return f.httpStatuses[o.status] === 1;
  return false;
}

export interface WebSocketAdmission {
  /** The tightest per-connection limits of the rules that matched. */
  readonly messagesPerSecond: number | undefined;
  readonly maxMessageBytes: number | undefined;
  release(): void;
}

/** An upgrade refused by maxConnections, connectionsPerSecond or maxConnectionsPerKey. */
export type UpgradeRefusal = { reason: 'rate_limited'; retryAfterMs: number; rule: RateLimitRule };

/**
 * The data plane's decision point. Holds the compiled chain for the current plan and swaps it
 * whole on a new plan; every call reads the chain once at its start, so a reload never mixes two
 * versions within one request. Order, and why:
 *   1. rate limits — cheapest, and they refuse excess before it occupies breaker or bulkhead;
 *   2. fencing tokens — one round trip to the lock nodes; after the limits so that excess never
 *      costs one, before the breaker so that a stale write never takes a probe or a slot;
 *   3. circuit breaker — fail fast while the app is known to be failing;
 *   4. bulkhead — hold a concurrency slot only for calls that will really be forwarded.
 * Local decisions are synchronous; only Global limits (Redis), fencing checks (lock nodes) and
 * bulkhead waits return promises.
 */
export class PolicyEngine {
  private chain: Chain;
  private readonly clock: Clock;
  private readonly metrics: SidecarMetrics;
  private readonly globalLimiter: GlobalLimiterFactory | undefined;
  private readonly onCircuitChange: CircuitChangeListener | undefined;
  private readonly globalConnections: GlobalConnectionQuotaFactory | undefined;
  /** The lock nodes' record of accepted fencing tokens; undefined without --lock-nodes. */
  private readonly fence: TokenFence | undefined;
  /** Per route, the request counters by protocol × decision, resolved on first use. */
  private readonly requestCells = new Map<string, (CounterCell | undefined)[]>();

  constructor(plan: Plan, deps: {
    clock: Clock; metrics: SidecarMetrics; globalLimiter?: GlobalLimiterFactory; globalConnections?: GlobalConnectionQuotaFactory;
    onCircuitChange?: CircuitChangeListener; fence?: TokenFence;
  }) {
    this.clock = deps.clock;
    this.metrics = deps.metrics;
    this.globalLimiter = deps.globalLimiter;
    this.globalConnections = deps.globalConnections;
    this.onCircuitChange = deps.onCircuitChange;
    this.fence = deps.fence;
    this.chain = new Chain(plan, {
      metrics: deps.metrics, now: () => deps.clock.now(), globalLimiter: deps.globalLimiter, globalConnections: deps.globalConnections,
      onCircuitChange: deps.onCircuitChange, fenceAvailable: deps.fence !== undefined,
    });
  }

  get plan(): Plan {
    return this.chain.plan;
  }

  get warnings(): readonly string[] {
    return this.chain.warnings;
  }

  apply(plan: Plan): void {
    const previous = this.chain;
    const next = new Chain(plan, {
      metrics: this.metrics, now: () => this.clock.now(), globalLimiter: this.globalLimiter, globalConnections: this.globalConnections,
      onCircuitChange: this.onCircuitChange, fenceAvailable: this.fence !== undefined, previous,
    });
    this.chain = next;
    previous.retire(next);
  }

  close(): void {
    this.chain.close();
  }

  check(req: RequestAttributes, remoteAddress: string): Permit | Rejection | Promise<Permit | Rejection> {
    const chain = this.chain;
    const now = this.clock.now();
    const limits = chain.limits;
    let shadow: string | undefined;
    for (let i = 0; i < limits.length; i++) {
      const step = limits[i] as LimitStep;
      if (!step.rule.matches(req)) continue;
      const level = step.priority ? levelOf(step.priority, req) : 0;
      const d = step.limiter.consume(partitionKey(step.rule, req, remoteAddress), now, level > 0 ? step.priority!.reserve(step.rule.limit!.burst, level) : 0);
      if (d instanceof Promise) return this.checkAsync(chain, req, remoteAddress, now, i, d, shadow);
      const verdict = this.judge(step, d, req, level);
      if (verdict === SHADOW) shadow ??= step.rule.id;
      else if (verdict) return verdict;
    }
    return this.fenced(chain, req, now, shadow);
  }

  /** The rest of check() once a Global limiter has answered with a promise. */
  private async checkAsync(
    chain: Chain, req: RequestAttributes, remote: string, now: number, from: number, first: Promise<Decision>, shadowed: string | undefined,
  ): Promise<Permit | Rejection> {
    let shadow = shadowed;
    const limits = chain.limits;
    let pending: Promise<Decision> | undefined = first;
    for (let i = from; i < limits.length; i++) {
      const step = limits[i] as LimitStep;
      let d: Decision | Promise<Decision>;
      const level = step.priority ? levelOf(step.priority, req) : 0;
      if (pending) {
        d = pending;
        pending = undefined;
      } else {
        if (!step.rule.matches(req)) continue;
        d = step.limiter.consume(partitionKey(step.rule, req, remote), now, level > 0 ? step.priority!.reserve(step.rule.limit!.burst, level) : 0);
      }
      const verdict = this.judge(step, await d, req, level);
      if (verdict === SHADOW) shadow ??= step.rule.id;
      else if (verdict) return verdict;
    }
    return this.fenced(chain, req, this.clock.now(), shadow);
  }

  /** The FencingPolicy rules the request matches, then breaker and bulkhead; synchronous when none match. */
  private fenced(chain: Chain, req: RequestAttributes, now: number, shadow: string | undefined): Permit | Rejection | Promise<Permit | Rejection> {
    const fences = chain.fences;
    for (let i = 0; i < fences.length; i++) {
      if ((fences[i] as FenceStep).rule.matches(req)) return this.fencedAsync(chain, req, shadow, i);
    }
    return this.guard(chain, req, now, shadow);
  }

  private async fencedAsync(chain: Chain, req: RequestAttributes, shadow: string | undefined, from: number): Promise<Permit | Rejection> {
    const fences = chain.fences;
    for (let i = from; i < fences.length; i++) {
      const step = fences[i] as FenceStep;
      if (i > from && !step.rule.matches(req)) continue;
      const refused = await this.checkToken(step, req);
      if (refused) return refused;
    }
    return this.guard(chain, req, this.clock.now(), shadow);
  }

  /** One fencing rule: undefined lets the request on. */
  private async checkToken(step: FenceStep, req: RequestAttributes): Promise<FencingRejection | undefined> {
    const rule = step.rule;
    const raw = req.header(rule.token.name);
    if (raw === undefined) {
      if (rule.missingToken === 'Allow') {
        step.counts.unchecked.n++;
        return undefined;
      }
      return this.refuseToken(step, req, 'missing', { reason: 'fencing_token_missing', retryAfterMs: 0, rule });
    }
    const token = parseFencingToken(raw);
    if (token === undefined) return this.refuseToken(step, req, 'malformed', { reason: 'fencing_token_malformed', retryAfterMs: 0, rule });
    const outcome: FencingOutcome = this.fence ? await this.fence.check(step.key, token) : { result: 'unavailable' };
    if (outcome.result === 'accepted') {
      step.counts.accepted.n++;
      return undefined;
    }
    if (outcome.result === 'stale') return this.refuseToken(step, req, 'stale', { reason: 'fencing_stale', retryAfterMs: 0, rule, token, newest: outcome.newest });
    if (rule.failureMode === 'Open') {
      step.counts.failedOpen.n++;
      return undefined;
    }
    return this.refuseToken(step, req, 'unavailable', { reason: 'fencing_unavailable', retryAfterMs: 1000, rule, token });
  }

  private refuseToken(step: FenceStep, req: RequestAttributes, result: 'missing' | 'malformed' | 'stale' | 'unavailable', r: FencingRejection): FencingRejection {
    step.counts[result].n++;
    this.count(req.protocol, step.rule.id, r.reason);
    return r;
  }

  /** Counts the limiter's decision; SHADOW when a DryRun rule would have rejected. */
  private judge(step: LimitStep, d: Decision, req: RequestAttributes, level: number): Rejection | typeof SHADOW | undefined {
    const gate = step.priority;
    // A Global limiter cannot keep a reserve in Redis: the level is judged from what remains.
    const shed = gate !== undefined && level > 0 && (d.reserved === true || (d.allowed && (d.limit - d.remaining) / d.limit > (gate.plan.ceilings[level] as number) + 1e-9));
    if (d.allowed && !shed) {
      step.allowed.n++;
      return undefined;
    }
    step.limited.n++;
    if (shed) {
      const name = gate.plan.levels[level] as string;
      this.metrics.adaptiveRefusals.cell(step.rule.id, 'priority_shed', name, step.enforce ? 'Enforce' : 'DryRun').n++;
      if (!step.enforce) return SHADOW;
      this.count(req.protocol, step.rule.id, 'priority_shed');
      return { reason: 'priority_shed', retryAfterMs: Math.max(1000, d.retryAfterMs), rule: step.rule, level: name };
    }
    if (!step.enforce) return SHADOW;
    this.count(req.protocol, step.rule.id, 'rate_limited');
    return { reason: 'rate_limited', retryAfterMs: d.retryAfterMs, rule: step.rule, decision: d };
  }

  /**
   * Breaker and bulkhead. `shadow` names a DryRun rule that would have rejected the call: the
   * request is counted once, with decision would_limit instead of allowed.
   */
  private guard(chain: Chain, req: RequestAttributes, now: number, shadow?: string): Permit | Rejection | Promise<Permit | Rejection> {
    let step: BreakerStep | undefined;
    for (const s of chain.breakers) {
      if (s.rule.matches(req)) {
        step = s;
        break;
      }
    }
    if (!step) {
      this.count(req.protocol, shadow ?? '-', shadow ? 'would_limit' : 'allowed');
      return new Permit(this.clock, undefined, ADMIT, false, now);
    }
    let admission = step.breaker.tryAcquire(now);
    if (admission === REJECT) {
      if (step.enforce) {
        this.count(req.protocol, step.rule.id, 'circuit_open');
        return { reason: 'circuit_open', retryAfterMs: step.breaker.retryAfterMs(now), rule: step.rule };
      }
      shadow ??= `${step.rule.id}\u0000would_break`;
      admission = ADMIT;
    }
    const bulkhead = step.bulkhead;
    if (!bulkhead) return this.admit(step, admission, false, now, req, shadow);
    const level = step.priority ? levelOf(step.priority, req) : 0;
    if (!step.enforce) {
      // DryRun never queues: the call goes on at once, counted as what an enforced rule would do.
      const would = bulkhead.acquireShadow(level);
      if (would !== true) {
        this.countRefusal(step, would, level, false);
        shadow ??= `${step.rule.id}\u0000would_limit`;
      }
      return this.admit(step, admission, true, now, req, shadow);
    }
    const slot = bulkhead.acquire(level);
    if (slot === true) return this.admit(step, admission, true, now, req, shadow);
    if (!(slot instanceof Promise)) return this.noSlot(step, admission, req, slot, level);
    const s = step;
    return slot.then((got) => (got === true ? this.admit(s, admission, true, this.clock.now(), req, shadow) : this.noSlot(s, admission, req, got, level)));
  }

  private countRefusal(step: BreakerStep, why: SlotRefusal, level: number, enforced: boolean): void {
    if (why === 'bulkhead_full') return;
    const name = step.priority ? (step.priority.plan.levels[level] as string) : '';
    this.metrics.adaptiveRefusals.cell(step.rule.id, why, name, enforced ? 'Enforce' : 'DryRun').n++;
  }

  private admit(step: BreakerStep, admission: Admission, holdsSlot: boolean, now: number, req: RequestAttributes, shadow: string | undefined): Permit {
    this.countFinal(req.protocol, step.rule.id, shadow);
    return new Permit(this.clock, step, admission, holdsSlot, now);
  }

  /**
   * No slot: the static bulkhead, the adaptive limit or the level's share said no. Never a breaker
   * failure — the app was not called — so a probe slot taken for it is given back.
   */
  private noSlot(step: BreakerStep, admission: Admission, req: RequestAttributes, why: SlotRefusal, level: number): Rejection {
    step.breaker.onCancel(admission);
    this.countRefusal(step, why, level, true);
    this.count(req.protocol, step.rule.id, why);
    if (why === 'priority_shed') return { reason: why, retryAfterMs: 1000, rule: step.rule, level: step.priority?.plan.levels[level] ?? '' };
    return { reason: why, retryAfterMs: 1000, rule: step.rule };
  }

  /**
   * Records a call the sidecar itself made to the app outside the inbound listeners (a queue
   * delivery), so a worker with no inbound traffic still trips — and recovers — its breaker.
   * While half-open, a delivery counts as a probe when a probe slot is free.
   */
  recordOutcome(req: RequestAttributes, outcome: CallOutcome, durationMs: number): void {
    const now = this.clock.now();
    for (const s of this.chain.breakers) {
      if (!s.rule.matches(req)) continue;
      const state = s.breaker.stateName(now);
      const failure = isFailure(s.rule, outcome);
      if (state === 'closed') s.breaker.onResult(now, ADMIT, failure, durationMs);
      else if (state === 'half-open') {
        const admission = s.breaker.tryAcquire(now);
        if (admission === ADMIT_PROBE) s.breaker.onResult(now, admission, failure, durationMs);
      }
      return;
    }
  }

  /** Whether a breaker that would guard `req` is open now (queue consumers pause on this). */
  circuitOpen(req: RequestAttributes): boolean {
    const now = this.clock.now();
    for (const s of this.chain.breakers) {
      if (s.rule.matches(req)) return s.enforce && s.breaker.stateName(now) === 'open';
    }
    return false;
  }

  /**
   * Admission of a WebSocket upgrade against the `websocket` blocks of the matching rules:
   * `maxConnections`, `connectionsPerSecond`, then `maxConnectionsPerKey` (the key read by
   * partitionKey(), as the rate-limit key of the same source). The returned limits apply per
   * connection. Called before check(): a refusal here is the request's one counted decision.
   * Synchronous unless a Global per-key quota asks Redis.
   */
  admitWebSocket(req: RequestAttributes, remoteAddress: string): WebSocketAdmission | UpgradeRefusal | Promise<WebSocketAdmission | UpgradeRefusal> {
    const now = this.clock.now();
    const matched = this.chain.websockets.filter((w) => w.rule.matches(req));
    let claims: QuotaClaim[] | undefined;
    for (const w of matched) {
      if (w.maxConnections !== undefined && w.open.count >= w.maxConnections && w.enforce) {
        this.count('websocket', w.rule.id, 'rate_limited');
        return { reason: 'rate_limited', retryAfterMs: 1000, rule: w.rule };
      }
      const d = w.connectionRate?.consume('', now);
      if (d && !d.allowed && w.enforce) {
        this.count('websocket', w.rule.id, 'rate_limited');
        return { reason: 'rate_limited', retryAfterMs: d.retryAfterMs, rule: w.rule };
      }
      if (w.quota) {
        (claims ??= []).push({ rule: w.rule, quota: w.quota, key: partitionKey(w.quotaKey!, req, remoteAddress), max: w.maxConnectionsPerKey!, enforce: w.enforce });
      }
    }
    if (!claims) return this.openWebSocket(matched, undefined);
    const outcome = claimAll(claims);
    if (outcome instanceof Promise) return outcome.then((o) => this.claimed(matched, o));
    return this.claimed(matched, outcome);
  }

  private claimed(matched: readonly WebSocketStep[], o: ClaimOutcome): WebSocketAdmission | UpgradeRefusal {
    if ('refused' in o) {
      this.count('websocket', o.refused.id, 'rate_limited');
      return { reason: 'rate_limited', retryAfterMs: o.retryAfterMs, rule: o.refused };
    }
    // A DryRun quota that would have refused: counted, and the upgrade goes on.
    for (const rule of o.wouldLimit) this.count('websocket', rule.id, 'would_limit');
    return this.openWebSocket(matched, o.leases);
  }

  private openWebSocket(matched: readonly WebSocketStep[], leases: readonly ConnectionLease[] | undefined): WebSocketAdmission {
    let messagesPerSecond: number | undefined;
    let maxMessageBytes: number | undefined;
    for (const w of matched) {
      w.open.count++;
      if (!w.enforce) continue;
      if (w.messagesPerSecond !== undefined) messagesPerSecond = Math.min(messagesPerSecond ?? Infinity, w.messagesPerSecond);
      if (w.maxMessageBytes !== undefined) maxMessageBytes = Math.min(maxMessageBytes ?? Infinity, w.maxMessageBytes);
    }
    let released = false;
    return {
      messagesPerSecond,
      maxMessageBytes,
      release: () => {
        if (released) return;
        released = true;
        for (const w of matched) w.open.count--;
        if (leases) for (const l of leases) l.release();
      },
    };
  }

  /** Counts an admitted request: allowed, or the DryRun decision that let it through. */
  private countFinal(protocol: string, route: string, shadow: string | undefined): void {
    if (shadow === undefined) return this.count(protocol, route, 'allowed');
    const sep = shadow.indexOf('\u0000');
    if (sep === -1) this.count(protocol, shadow, 'would_limit');
    else this.count(protocol, shadow.slice(0, sep), shadow.slice(sep + 1) as Decision_);
  }

  private count(protocol: string, route: string, decision: Decision_): void {
    let cells = this.requestCells.get(route);
    if (!cells) {
      cells = [];
      this.requestCells.set(route, cells);
    }
    const i = (PROTOCOL_INDEX[protocol] ?? 0) * DECISIONS.length + DECISION_INDEX[decision];
    (cells[i] ??= this.metrics.requests.cell('inbound', protocol, route, decision)).n++;
  }
}

const DECISIONS = [
  'allowed', 'rate_limited', 'circuit_open', 'bulkhead_full', 'concurrency_limited', 'priority_shed', 'would_limit', 'would_break',
  'fencing_stale', 'fencing_token_missing', 'fencing_token_malformed', 'fencing_unavailable',
] as const;
type Decision_ = (typeof DECISIONS)[number];
const DECISION_INDEX = Object.fromEntries(DECISIONS.map((d, i) => [d, i])) as Record<Decision_, number>;
const PROTOCOL_INDEX: Record<string, number> = { http: 0, grpc: 1, websocket: 2 };

/**
 * The partition a request is counted in. A missing header or metadata value is its own partition
 * (""), so clients that omit the key share one quota rather than escaping the limit.
 * `remoteAddress` is the client address (http/client-address.ts), X-Forwarded-For applied.
 * Client-chosen values are capped in size (boundedPartitionKey).
 */
export function partitionKey(rule: Pick<RateLimitRule, 'key'>, req: RequestAttributes, remoteAddress: string): string {
  switch (rule.key.source) {
    case 'None':
      return '';
    case 'RemoteAddress':
      return remoteAddress;
    case 'Path':
      return boundedPartitionKey(req.path);
    case 'Header':
    case 'GrpcMetadata':
      return boundedPartitionKey(req.header(rule.key.name as string) ?? '');
  }
}

/** A request's priority level from its header or gRPC metadata (the same lookup for both). */
function levelOf(gate: PriorityGate, req: RequestAttributes): number {
  return gate.levelOf(req.header(gate.plan.name));
}

/** A DryRun rule would have rejected: count it, let the call through. */
const SHADOW = Symbol('shadow');

export function isRejection(v: Permit | Rejection): v is Rejection {
  return !(v instanceof Permit);
}
