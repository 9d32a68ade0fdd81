import type { Plan, TaskQueuePlan } from './plan.ts';

/**
 * Which TaskQueues an app may produce to, decided here once for the operator (what goes into a
 * pod's snapshot), the compiler (a standalone file) and the sidecar (what the local API accepts).
 *
 * Every TaskQueue of the app's own namespace, whatever the queue's selector: a selector names the
 * workers that consume, and producers are rarely those workers. Standalone there is no namespace
 * to keep to (`appNamespace` undefined): the file is the app's whole world.
 */
export function mayProduceTo(queue: { namespace: string }, appNamespace: string | undefined): boolean {
  return appNamespace === undefined || queue.namespace === appNamespace;
}

/**
 * The queues of a plan the app may post to: those it consumes (`taskQueues`) and those it may only
 * produce to (`producibleTaskQueues`), each once.
 */
export function producibleTaskQueues(plan: Plan): readonly TaskQueuePlan[] {
  const only = plan.producibleTaskQueues ?? [];
  if (only.length === 0) return plan.taskQueues;
  const ids = new Set(plan.taskQueues.map((q) => q.id));
  return [...plan.taskQueues, ...only.filter((q) => !ids.has(q.id))];
}
