// The TaskQueue feature: producing on the local API, consuming into the app, crash-safe via Redis.
export { QueueFeature, type QueueFeatureDeps } from './queue-feature.ts';
export type { QueueCircuit } from './queue-consumer.ts';
export { QueueError, type QueueErrorCode } from './errors.ts';
export type { QueueStats } from '../../../lib/redis/queue-stats.ts';
export type { Deliverer } from './delivery.ts';
export { TASK_HEADERS } from './delivery.ts';
