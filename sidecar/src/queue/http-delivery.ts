import { Pool } from 'undici';
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
  private readonly active = new Set<AbortController>();
  private watched: AbortSignal | undefined;

  constructor(appHttp: string, plan: TaskQueuePlan) {
    const origin = appHttp.includes('://') ? appHttp : `http://${appHttp}`;
    // Enough connections for every call that can be in flight at once, so none waits for a socket.
    const connections = Math.max(1, Math.ceil(plan.concurrency / plan.delivery.batchSize));
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    this.path = plan.delivery.path ?? '/';
    this.queueName = plan.name;
    this.timeoutMs = plan.delivery.timeoutMs;
    this.permanent = plan.retry.permanentStatuses;
  }

  async deliver(tasks: readonly Task[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    this.watch(signal);
    // One controller and one timer per call: cheaper than AbortSignal.timeout + AbortSignal.any,
    // which showed up in profiles at thousands of calls a second.
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort();
    }, this.timeoutMs);
    this.active.add(ac);
    if (signal.aborted) ac.abort();
    const single = tasks.length === 1 ? (tasks[0] as Task) : undefined;
    try {
      const res = await this.pool.request({
        method: 'POST',
        path: this.path,
        signal: ac.signal,
        headers: single
          ? { 'content-type': single.contentType, [TASK_HEADERS.id]: single.id, [TASK_HEADERS.attempt]: String(single.attempt), [TASK_HEADERS.queue]: this.queueName }
          : { 'content-type': 'application/json', [TASK_HEADERS.queue]: this.queueName, [TASK_HEADERS.batchSize]: String(tasks.length) },
        body: single ? single.payload : batchBody(this.queueName, tasks),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
      const status = res.statusCode;
      if (single || status < 200 || status >= 300) {
        await res.body.dump();
        return tasks.map(() => this.classify(status));
      }
      return this.batchOutcomes(tasks, status, await res.body.text());
    } catch (err) {
      const reason = timedOut ? 'timeout' : signal.aborted ? 'aborted' : errorReason(err);
      return tasks.map(() => failed(reason));
    } finally {
      clearTimeout(timer);
      this.active.delete(ac);
    }
  }

  private watch(signal: AbortSignal): void {
    if (this.watched === signal) return;
    this.watched = signal;
    signal.addEventListener('abort', () => {
      for (const ac of this.active) ac.abort();
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
    s += t.contentType === 'application/json' && t.payload.length > 0 ? `"payload":${t.payload.toString('utf8')}}` : `"body":"${t.payload.toString('base64')}"}`;
  });
  return `${s}]}`;
}

function errorReason(err: unknown): string {
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = e?.cause?.code ?? e?.code;
  return typeof code === 'string' ? code : String(e?.message ?? err);
}
