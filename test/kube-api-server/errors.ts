/**
 * API errors as the real kube-apiserver reports them: a `Status` object with a reason and an HTTP
 * code. Clients (client-go, @kubernetes/client-node, kubectl) branch on `reason` and `code`, so
 * those must match the real server exactly; messages follow its wording so tests can read them.
 */
export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class ApiError extends Error {
  readonly code: number;
  readonly reason: string;
  readonly details: StatusDetails | undefined;

  constructor(code: number, reason: string, message: string, details?: StatusDetails) {
    super(message);
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** What a resource is called in messages: `ratelimitpolicies.sluice.dev` or `pods`. */
export interface Qualified {
  group: string;
  plural: string;
  kind: string;
}

const qualified = (r: Qualified) => (r.group ? `${r.plural}.${r.group}` : r.plural);

export const notFound = (r: Qualified, name: string) =>
  new ApiError(404, 'NotFound', `${qualified(r)} "${name}" not found`, { name, group: r.group, kind: r.plural });

export const alreadyExists = (r: Qualified, name: string) =>
  new ApiError(409, 'AlreadyExists', `${qualified(r)} "${name}" already exists`, { name, group: r.group, kind: r.plural });

export const conflict = (r: Qualified, name: string) =>
  new ApiError(409, 'Conflict',
    `Operation cannot be fulfilled on ${qualified(r)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: r.group, kind: r.plural });

export const badRequest = (message: string) => new ApiError(400, 'BadRequest', message);
export const methodNotAllowed = (message = 'the server does not allow this method on the requested resource') => new ApiError(405, 'MethodNotAllowed', message);
export const unsupportedMediaType = (message: string) => new ApiError(415, 'UnsupportedMediaType', message);
export const unauthorized = () => new ApiError(401, 'Unauthorized', 'Unauthorized');
export const internalError = (message: string) => new ApiError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ reason: 'UnexpectedServerResponse', message }] });
export const gone = (message: string) => new ApiError(410, 'Expired', message);
export const notFoundPath = () => new ApiError(404, 'NotFound', 'the server could not find the requested resource', { causes: [] });

/** One field error, formatted the way k8s.io/apimachinery/pkg/util/validation/field does. */
export interface FieldError {
  field: string;
  /** FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueTypeInvalid, FieldValueForbidden, FieldValueTooLong, FieldValueTooMany, FieldValueDuplicate */
  reason: string;
  /** The message without the field prefix, e.g. `Invalid value: -1: ... should be greater than or equal to 1`. */
  detail: string;
}

/** The 422 answer: `Kind.group "name" is invalid: field: detail[, ...]`. */
export function invalid(kind: string, group: string, name: string, errors: FieldError[]): ApiError {
  const parts = errors.map((e) => (e.field ? `${e.field}: ${e.detail}` : e.detail));
  const list = parts.length === 1 ? parts[0] : `[${parts.join(', ')}]`;
  const subject = group ? `${kind}.${group}` : kind;
  return new ApiError(422, 'Invalid', `${subject} "${name}" is invalid: ${list}`, {
    name, group, kind,
    causes: errors.map((e) => ({ reason: e.reason, message: e.detail, field: e.field })),
  });
}

/** Go's %#v-ish rendering of a value in `Invalid value: <v>` — strings quoted, objects by type. */
export function describeValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return '"array"';
  return '"object"';
}

export const fieldInvalid = (field: string, value: unknown, message: string): FieldError =>
  ({ field, reason: 'FieldValueInvalid', detail: `Invalid value: ${describeValue(value)}: ${message}` });
export const fieldRequired = (field: string, message = ''): FieldError =>
  ({ field, reason: 'FieldValueRequired', detail: message ? `Required value: ${message}` : 'Required value' });
export const fieldNotSupported = (field: string, value: unknown, supported: unknown[]): FieldError =>
  ({ field, reason: 'FieldValueNotSupported', detail: `Unsupported value: ${describeValue(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}` });
export const fieldTypeInvalid = (field: string, value: unknown, message: string): FieldError =>
  ({ field, reason: 'FieldValueTypeInvalid', detail: `Invalid value: ${describeValue(value)}: ${message}` });
export const fieldForbidden = (field: string, message: string): FieldError =>
  ({ field, reason: 'FieldValueForbidden', detail: `Forbidden: ${message}` });
