/**
 * Every failure the queue feature reports to a caller has a stable code; tests and clients match
 * on the code, never the message. `httpStatus` is the one place a failure maps to the local API.
 */
export type QueueErrorCode =
  | 'SLUICE_ERR_QUEUE_NOT_FOUND'
  | 'SLUICE_ERR_QUEUE_AMBIGUOUS'
  | 'SLUICE_ERR_QUEUE_BAD_TASK'
  | 'SLUICE_ERR_QUEUE_TOO_LARGE'
  | 'SLUICE_ERR_QUEUE_UNAVAILABLE'
  /** durability Replicated: no replica confirmed the task in time (it may or may not survive). */
  | 'SLUICE_ERR_QUEUE_NOT_REPLICATED'
  | 'SLUICE_ERR_QUEUE_DELIVERY_TIMEOUT'
  | 'SLUICE_ERR_QUEUE_DELIVERY_FAILED'
  | 'SLUICE_ERR_QUEUE_DRAINING'
  | 'SLUICE_ERR_QUEUE_NO_DEAD_LETTER'
  | 'SLUICE_ERR_QUEUE_REDRIVE_RUNNING';

const HTTP_STATUS: Record<QueueErrorCode, number> = {
  SLUICE_ERR_QUEUE_NOT_FOUND: 404,
  SLUICE_ERR_QUEUE_AMBIGUOUS: 409,
  SLUICE_ERR_QUEUE_BAD_TASK: 400,
  SLUICE_ERR_QUEUE_TOO_LARGE: 413,
  SLUICE_ERR_QUEUE_UNAVAILABLE: 503,
  SLUICE_ERR_QUEUE_NOT_REPLICATED: 503,
  SLUICE_ERR_QUEUE_DELIVERY_TIMEOUT: 504,
  SLUICE_ERR_QUEUE_DELIVERY_FAILED: 502,
  SLUICE_ERR_QUEUE_DRAINING: 503,
  SLUICE_ERR_QUEUE_NO_DEAD_LETTER: 409,
  SLUICE_ERR_QUEUE_REDRIVE_RUNNING: 409,
};

export class QueueError extends Error {
  readonly code: QueueErrorCode;

  constructor(code: QueueErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QueueError';
    this.code = code;
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }
}
