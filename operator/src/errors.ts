/**
 * Operator errors with stable codes (tests and logs match on `code`, never on messages).
 */
export class KubeApiError extends Error {
  readonly code = 'SLUICE_ERR_KUBE_API';
  readonly statusCode: number;
  /** The Status `reason` from the API server (NotFound, Conflict, Expired, ...). */
  readonly reason: string;

  constructor(method: string, path: string, statusCode: number, reason: string, message: string) {
    super(`${method} ${path}: ${statusCode} ${reason}: ${message}`);
    this.name = 'KubeApiError';
    this.statusCode = statusCode;
    this.reason = reason;
  }
}

export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.statusCode === 404;
export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.statusCode === 409;
export const isGone = (err: unknown): boolean => err instanceof KubeApiError && err.statusCode === 410;

/** A sidecar could not prove it is the pod it claims to be. */
export class SidecarAuthError extends Error {
  readonly code: 'SLUICE_ERR_UNAUTHENTICATED' | 'SLUICE_ERR_PERMISSION_DENIED';

  constructor(code: SidecarAuthError['code'], message: string) {
    super(message);
    this.name = 'SidecarAuthError';
    this.code = code;
  }
}

export { UsageError } from '../../lib/cli-flags.ts';
