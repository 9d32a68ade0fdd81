import type { Plan, TaskQueuePlan } from '../../../lib/policy/plan.ts';
import { compilePlan, emptyPlan } from '../../../lib/policy/compile.ts';
import { silentLogger, type Logger } from '../../../lib/log.ts';
import type { SidecarMetrics } from '../metrics.ts';

export type PlanListener = (plan: Plan) => void;

export interface Rejected {
  version: string | undefined;
  reason: string;
  at: string;
}

/** How an operator snapshot becomes a Plan; injectable so tests can play a sidecar of another version. */
export type CompileSnapshot = (resources: unknown[], version: string) => Plan;

/** Where a set of documents came from: a file (standalone) or the operator's discovery stream. */
export type SourceKind = 'file' | 'operator';

/** A set of policy documents as a source read them, not yet validated. */
export interface PolicyDocuments {
  source: SourceKind;
  /** The file path or the operator address, shown in /config. */
  origin: string;
  version: string;
  /** Parses what the source read; a parse error (YAML, JSON) refuses the set like an invalid policy. */
  read: () => unknown[];
  /**
   * Operator only: the TaskQueues of the namespace the app may produce to without being selected.
   * Each is compiled on its own, and one that does not compile is left out with a warning instead
   * of refusing the set: the pod does not enforce these queues, so a NACK would blame the policies
   * it does enforce; producing to that queue answers 404.
   */
  producible?: ReadonlyArray<{ ref: string; read: () => unknown }>;
}

/** The answer to an offer: what the operator gets as ACK or NACK, and what a file source reports. */
export type Answer =
  | { readonly ack: true; readonly version: string; readonly warnings?: readonly string[] }
  | { readonly ack: false; readonly version: string | undefined; readonly reason: string };

export interface PolicyStoreOptions {
  /** The pod's labels: which documents of a file apply (the operator selects for the pod itself). */
  labels?: Readonly<Record<string, string>>;
  metrics?: Pick<SidecarMetrics, 'configVersion' | 'configReloads'>;
  logger?: Logger;
  /** How an operator snapshot is compiled (default: compilePlan, tolerating a newer operator's kinds and fields). */
  compileSnapshot?: CompileSnapshot;
}

/**
 * The one place a policy is validated, compiled and swapped in, whichever source delivered it (two
 * sources, one store, as in linkerd2-proxy's inbound policy): the sources only read documents,
 * so the config metrics, the log lines and last-known-good behave the same in both modes. The plan
 * in force is replaced whole; a refused set never touches it, and its reason is kept for /config
 * and returned for the NACK.
 */
export class PolicyStore {
  private plan: Plan = emptyPlan();
  private listeners: PlanListener[] = [];
  private readonly labels: Readonly<Record<string, string>> | undefined;
  private readonly metrics: PolicyStoreOptions['metrics'];
  private readonly logger: Logger;
  private readonly compileSnapshot: CompileSnapshot;
  source = 'none';
  appliedAt: string | undefined;
  lastRejected: Rejected | undefined;
  loaded = false;

  constructor(opts: PolicyStoreOptions = {}) {
    this.labels = opts.labels;
    this.metrics = opts.metrics;
    this.logger = opts.logger ?? silentLogger;
    // Snapshots come from the operator, which may be a version ahead (lib/policy/skew.ts).
    this.compileSnapshot = opts.compileSnapshot ?? ((resources, version) => compilePlan(resources, { version, tolerateSkew: true }));
  }

  get current(): Plan {
    return this.plan;
  }

  subscribe(listener: PlanListener): void {
    this.listeners.push(listener);
  }

  /** Validates, compiles and swaps in `docs`; or keeps the plan in force and says why not. */
  offer(docs: PolicyDocuments): Answer {
    // The same version from the same kind of source is the same set: nothing to compile again.
    if (this.source.startsWith(`${docs.source}:`) && this.plan.version === docs.version) {
      this.metrics?.configReloads.labels('unchanged').inc();
      return { ack: true, version: docs.version, ...(this.plan.warnings ? { warnings: this.plan.warnings } : {}) };
    }
    let plan: Plan;
    try {
      plan = this.compile(docs.source, docs.read(), docs.version);
      const producible = this.compileProducible(docs);
      if (producible.length > 0) plan = Object.freeze({ ...plan, producibleTaskQueues: producible });
    } catch (err) {
      return this.refuse(docs, (err as Error).message);
    }
    const previous = this.plan.version;
    this.swap(plan, `${docs.source}:${docs.origin}`);
    this.metrics?.configVersion.reset();
    this.metrics?.configVersion.labels(plan.version, docs.source).set(1);
    this.metrics?.configReloads.labels('applied').inc();
    this.logger.info('config applied', {
      source: docs.source, version: plan.version, previous, rateLimitRules: plan.rateLimits.length, breakerRules: plan.breakers.length,
      taskQueues: plan.taskQueues.length, leaderElections: plan.leaderElections.length,
    });
    if (plan.warnings) this.logger.warn('config from a newer operator: parts ignored', { version: plan.version, warnings: plan.warnings });
    return { ack: true, version: plan.version, ...(plan.warnings ? { warnings: plan.warnings } : {}) };
  }

  /** A source that could not even read its documents (a missing file): refused, the plan in force stays. */
  refuse(docs: Pick<PolicyDocuments, 'source'> & { version: string | undefined }, reason: string): Answer {
    this.lastRejected = { version: docs.version, reason, at: new Date().toISOString() };
    this.metrics?.configReloads.labels('rejected').inc();
    this.logger.error('config rejected; the last good config stays in force', { source: docs.source, version: docs.version, reason, active: this.plan.version });
    return { ack: false, version: docs.version, reason };
  }

  private compile(source: SourceKind, documents: unknown[], version: string): Plan {
    return source === 'operator' ? this.compileSnapshot(documents, version) : compilePlan(documents, { labels: this.labels, version });
  }

  private compileProducible(docs: PolicyDocuments): TaskQueuePlan[] {
    const out: TaskQueuePlan[] = [];
    for (const q of docs.producible ?? []) {
      try {
        out.push(...this.compile(docs.source, [q.read()], docs.version).taskQueues);
      } catch (err) {
        this.logger.warn('producible TaskQueue refused; the app cannot post to it', { queue: q.ref, version: docs.version, reason: (err as Error).message });
      }
    }
    return out;
  }

  private swap(plan: Plan, source: string): void {
    this.plan = plan;
    this.source = source;
    this.loaded = true;
    this.appliedAt = new Date().toISOString();
    for (const l of this.listeners) l(plan);
  }
}
