import type { Dispatcher } from 'undici';
import { Pool } from '../http/undici-pool.ts';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { TASK_HEADERS, failed, type Deliverer } from './delivery.ts';
import type { DeliveryOutcome } from './retry-decision.ts';
import type { Task } from './task.ts';

/**
 * Delivers tasks as HTTP POSTs to the app over a keep-alive pool. One task per call: the body is
 * the payload as produced, with its content type. Several per call (`batchSize` > 1): a JSON body
 * `{"queue", "tasks": [{"id", "attempt", "contentType", "payload" | "body" (base64)}]}`; the app
 * answers 2xx, optionally with `{"results": [{"id", "status"}]}` to fail some tasks of the batch.
 */
export class HttpDelivery implements Deliverer {
  private readonly pool: Pool;
  private readonly path: string;
  private readonly queueName: string;
  private readonly timeoutMs: number;
  private readonly permanent: Uint8Array;
  /** Calls in flight, so a drain cut-off can abort them all without a listener per call. */
  private readonly active = new Set<DeliveryCall>();
  private watched: AbortSignal | undefined;

  constructor(appHttp: string, plan: TaskQueuePlan) {
    const origin = appHttp.includes('://') ? appHttp : `http://${appHttp}`;
    // Enough connections for every call that can be in flight at once, so none waits for a socket.
    const connections = Math.max(1, Math.ceil(Math.max(plan.concurrency, plan.adaptiveConcurrency?.max ?? 0) / plan.delivery.batchSize));
    // delivery.timeout is one timer per call (below) over the whole exchange, so undici's own
    // per-phase timers stay off: re-arming them on every request kept thousands of cleared
    // timers alive until undici's next sweep.
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000, headersTimeout: 0, bodyTimeout: 0 });
    this.path = plan.delivery.path ?? '/';
    this.queueName = plan.name;
    this.timeoutMs = plan.delivery.timeoutMs;
    this.permanent = plan.retry.permanentStatuses;
  }

  async deliver(tasks: readonly Task[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    this.watch(signal);
    const single = tasks.length === 1 ? (tasks[0] as Task) : undefined;
    // undici's low-level dispatch with a small handler: no response stream, request promise or
    // abort listener per call (pool.request's were most of what a delivered task allocated).
    const call = new DeliveryCall(single === undefined);
    const timer = setTimeout(() => call.abort('timeout'), this.timeoutMs);
    this.active.add(call);
    if (signal.aborted) call.abort('aborted');
    try {
      // undici reports bad options through the handler; a throw would mean the same, so it ends
      // the call the same way instead of escaping the consumer loop.
      dispatchOrFail(this.pool, call, {
        method: 'POST',
        path: this.path,
        headers: single
          ? {
            'content-type': single.contentType, [TASK_HEADERS.id]: single.id, [TASK_HEADERS.attempt]: String(single.attempt), [TASK_HEADERS.queue]: this.queueName,
            ...(single.orderingKey === undefined ? {} : { [TASK_HEADERS.orderingKey]: single.orderingKey }),
          }
          : { 'content-type': 'application/json', [TASK_HEADERS.queue]: this.queueName, [TASK_HEADERS.batchSize]: String(tasks.length) },
        body: single ? single.payload : batchBody(this.queueName, tasks),
      });
      const answer = await call.answered;
      if ('failure' in answer) return tasks.map(() => failed(answer.failure));
      if (single || answer.status < 200 || answer.status >= 300) return tasks.map(() => this.classify(answer.status));
      return this.batchOutcomes(tasks, answer.status, answer.body);
    } finally {
      clearTimeout(timer);
      this.active.delete(call);
    }
  }

  private watch(signal: AbortSignal): void {
    if (this.watched === signal) return;
    this.watched = signal;
    signal.addEventListener('abort', () => {
      for (const call of this.active) call.abort('aborted');
    }, { once: true });
  }

  close(): Promise<void> {
    return this.pool.destroy();
  }

  private classify(status: number): DeliveryOutcome {
    if (status >= 200 && status < 300) return { ok: true, status };
    return failed(`http ${status}`, this.permanent[status] === 1, status);
  }

  private batchOutcomes(tasks: readonly Task[], status: number, text: string): DeliveryOutcome[] {
    const byId = new Map<string, number>();
    if (text.length > 0) {
      try {
        const results = (JSON.parse(text) as { results?: unknown }).results;
        if (Array.isArray(results)) {
          for (const r of results as { id?: unknown; status?: unknown }[]) {
            if (typeof r?.id === 'string' && typeof r.status === 'number') byId.set(r.id, r.status);
          }
        }
      } catch {
        // A 2xx whose body is not our results document means "all done".
      }
    }
    return tasks.map((t) => this.classify(byId.get(t.id) ?? status));
  }
}

function batchBody(queue: string, tasks: readonly Task[]): string {
  // Built by hand: JSON payloads are embedded as they are, without a parse/stringify round trip.
  let s = `{"queue":${JSON.stringify(queue)},"tasks":[`;
  tasks.forEach((t, i) => {
    if (i > 0) s += ',';
    s += `{"id":${JSON.stringify(t.id)},"attempt":${t.attempt},"contentType":${JSON.stringify(t.contentType)},`;
    if (t.orderingKey !== undefined) s += `"orderingKey":${JSON.stringify(t.orderingKey)},`;
    s += t.contentType === 'application/json' && t.payload.length > 0 ? `"payload":${t.payload.toString('utf8')}}` : `"body":"${t.payload.toString('base64')}"}`;
  });
  return `${s}]}`;
}

function dispatchOrFail(pool: Pool, call: DeliveryCall, opts: Dispatcher.DispatchOptions): void {
  try {
    pool.dispatch(opts, call);
  } catch (err) {
    call.onResponseError(undefined, err as Error);
  }
}

/** The most of a batch answer's body kept for its per-task results. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

type Answer = { readonly status: number; readonly body: string } | { readonly failure: string };

/**
 * One delivery call as undici's dispatch handler: keeps the status, and the body only when a batch
 * answer may carry per-task results. `abort` ends it with a reason of ours (timeout, drain).
 */
class DeliveryCall implements Dispatcher.DispatchHandler {
  readonly answered: Promise<Answer>;
  private settle!: (a: Answer) => void;
  private readonly keepBody: boolean;
  private controller: Dispatcher.DispatchController | undefined;
  private abortedFor: string | undefined;
  private status = 0;
  private chunks: Buffer[] | undefined;
  private bytes = 0;

  constructor(keepBody: boolean) {
    this.keepBody = keepBody;
    this.answered = new Promise((resolve) => (this.settle = resolve));
  }

  abort(reason: 'timeout' | 'aborted'): void {
    if (this.abortedFor !== undefined) return;
    this.abortedFor = reason;
    this.controller?.abort(Object.assign(new Error(`delivery ${reason}`), { code: 'SLUICE_ERR_DELIVERY_ABORTED' }));
    this.settle({ failure: reason });
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.abortedFor !== undefined) controller.abort(new Error(`delivery ${this.abortedFor}`));
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode < 200) return; // 1xx informational
    this.status = statusCode;
    if (this.keepBody && statusCode < 300) this.chunks = [];
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.chunks === undefined) return;
    this.bytes += chunk.length;
    // A results document is small; past the cap the body is not one, and the status decides.
    if (this.bytes > MAX_ANSWER_BYTES) this.chunks = undefined;
    else this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    this.settle({ status: this.status, body: this.chunks ? Buffer.concat(this.chunks).toString('utf8') : '' });
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    // After abort() the promise is already settled with our reason; settling again is a no-op.
    this.settle({ failure: this.abortedFor ?? errorReason(err) });
  }
}

function errorReason(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = e?.cause?.code ?? e?.code;
  return typeof code === 'string' ? code : String(e?.message ?? err);
}
