/**
 * AdmissionReview v1 in and out: the one place that gathers the patcher's inputs from a request,
 * and turns its decision into the response the API server expects. No I/O.
 *
 * Anything other than a pod CREATE is allowed unchanged: the webhook configuration only sends pod
 * creates, and a stray request must never block the cluster.
 */
import type { InjectionConfig } from './injection-config.ts';
import type { InjectionDecision, PatcherInput, PodLike } from './pod-patcher.ts';

export interface AdmissionRequest {
  uid: string;
  kind?: { group?: string; version?: string; kind?: string };
  operation?: string;
  namespace?: string;
  subResource?: string;
  object?: unknown;
}

export class AdmissionReviewError extends Error {
  readonly code = 'SLUICE_ERR_BAD_ADMISSION_REVIEW';
}

export function parseAdmissionReview(body: unknown): AdmissionRequest {
  const review = body as { apiVersion?: unknown; kind?: unknown; request?: Partial<AdmissionRequest> } | null;
  if (!review || typeof review !== 'object') throw new AdmissionReviewError('body is not a JSON object');
  if (review.kind !== 'AdmissionReview' || review.apiVersion !== 'admission.k8s.io/v1') {
    throw new AdmissionReviewError(`expected an admission.k8s.io/v1 AdmissionReview, got ${JSON.stringify(review.apiVersion)} ${JSON.stringify(review.kind)}`);
  }
  const req = review.request;
  if (!req || typeof req !== 'object' || typeof req.uid !== 'string' || req.uid === '') throw new AdmissionReviewError('AdmissionReview has no request.uid');
  return req as AdmissionRequest;
}

/** Whether this request is one the injector acts on. */
export function isPodCreate(req: AdmissionRequest): boolean {
  return req.operation === 'CREATE' && !req.subResource && req.kind?.group === '' && req.kind?.kind === 'Pod'
    && !!req.object && typeof req.object === 'object';
}

/** The patcher's input. On CREATE, `metadata.namespace` may be empty; the request carries it. */
export function gatherInput(req: AdmissionRequest, opts: { namespaceOptedIn: boolean; config: InjectionConfig }): PatcherInput {
  const pod = req.object as PodLike;
  return {
    pod: { ...pod, metadata: { ...pod.metadata, ...(req.namespace ? { namespace: req.namespace } : {}) } },
    namespaceOptedIn: opts.namespaceOptedIn,
    config: opts.config,
  };
}

export interface AdmissionResponse {
  apiVersion: 'admission.k8s.io/v1';
  kind: 'AdmissionReview';
  response: {
    uid: string;
    allowed: boolean;
    patchType?: 'JSONPatch';
    patch?: string;
    status?: { code: number; reason: string; message: string };
    warnings?: string[];
  };
}

export function admissionResponse(uid: string, decision: InjectionDecision | { action: 'allow' }): AdmissionResponse {
  const base = { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview' } as const;
  switch (decision.action) {
    case 'patch':
      return { ...base, response: { uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(decision.patch)).toString('base64') } };
    case 'deny':
      // 400 BadRequest: the pod's own annotations or ports are wrong, and the message says which.
      return { ...base, response: { uid, allowed: false, status: { code: 400, reason: 'BadRequest', message: `sluice: ${decision.message}` } } };
    default:
      return { ...base, response: { uid, allowed: true } };
  }
}
