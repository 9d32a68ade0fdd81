import { Client, Metadata, credentials, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { TaskQueuePlan } from '../../../lib/policy/index.ts';
import { TASK_HEADERS, failed, type Deliverer } from './delivery.ts';
import type { DeliveryOutcome } from './retry-decision.ts';
import type { Task } from './task.ts';

/**
 * gRPC codes that mean the app refuses the task itself — retrying the same bytes cannot succeed —
 * the gRPC counterparts of HTTP 400/422.
 */
const PERMANENT_CODES = new Set<number>([GrpcStatus.INVALID_ARGUMENT, GrpcStatus.FAILED_PRECONDITION]);

/**
 * Delivers each task as a unary call to `delivery.method` (`pkg.Service/Method`). The payload bytes
 * are the request message as the producer encoded it (Sluice needs no .proto); the task id,
 * attempt and queue travel as metadata. gRPC has no batch form: tasks of a batch go as parallel
 * calls over the one HTTP/2 connection.
 */
export class GrpcDelivery implements Deliverer {
  private readonly client: Client;
  private readonly path: string;
  private readonly queueName: string;
  private readonly timeoutMs: number;

  constructor(appGrpc: string, plan: TaskQueuePlan) {
    this.client = new Client(appGrpc, credentials.createInsecure());
    this.path = `/${plan.delivery.method ?? ''}`;
    this.queueName = plan.name;
    this.timeoutMs = plan.delivery.timeoutMs;
  }

  deliver(tasks: readonly Task[], signal: AbortSignal): Promise<DeliveryOutcome[]> {
    return Promise.all(tasks.map((t) => this.one(t, signal)));
  }

  async close(): Promise<void> {
    this.client.close();
  }

  private one(task: Task, signal: AbortSignal): Promise<DeliveryOutcome> {
    return new Promise((resolve) => {
      const md = new Metadata();
      md.set(TASK_HEADERS.id, task.id);
      md.set(TASK_HEADERS.attempt, String(task.attempt));
      md.set(TASK_HEADERS.queue, this.queueName);
      const call = this.client.makeUnaryRequest<Buffer, Buffer>(
        this.path,
        (b) => b,
        (b) => b,
        task.payload,
        md,
        { deadline: Date.now() + this.timeoutMs },
        (err: ServiceError | null) => {
          signal.removeEventListener('abort', cancel);
          if (!err) return resolve({ ok: true, status: undefined });
          if (err.code === GrpcStatus.DEADLINE_EXCEEDED) return resolve(failed('timeout'));
          if (err.code === GrpcStatus.CANCELLED && signal.aborted) return resolve(failed('aborted'));
          resolve(failed(`grpc ${GrpcStatus[err.code] ?? err.code}`, PERMANENT_CODES.has(err.code)));
        },
      );
      const cancel = () => call.cancel();
      signal.addEventListener('abort', cancel, { once: true });
    });
  }
}
