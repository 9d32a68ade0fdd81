/**
 * Kubernetes resource quantities ("250m", "1.5", "128Mi", "1G"), parsed strictly enough that an
 * annotation can be trusted to go into a pod spec. Annotations are free text written by anyone who
 * can create a pod, so a value is accepted only if it is a plain quantity — no signs, exponents,
 * whitespace, quotes or newlines — and within sane bounds for a sidecar (a 1-byte memory limit
 * would OOM-loop the proxy; 10 000 cores is a typo or an attack on the scheduler).
 */

const SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

// Digits with an optional fraction, then one suffix. The full Kubernetes grammar also allows a
// sign and decimal exponents ("1e3"); a sidecar's resources never need them, so they are refused.
const QUANTITY = /^(?:\d{1,9}(?:\.\d{1,6})?|\.\d{1,6})(?:m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

export type ResourceName = 'cpu' | 'memory';

/** The accepted range for each resource, in cores and in bytes. */
export const QUANTITY_BOUNDS: Record<ResourceName, { min: number; max: number; minText: string; maxText: string }> = {
  cpu: { min: 0.001, max: 16, minText: '1m', maxText: '16' },
  memory: { min: 16 * 2 ** 20, max: 16 * 2 ** 30, minText: '16Mi', maxText: '16Gi' },
};

export class QuantityError extends Error {
  readonly code = 'SLUICE_ERR_INVALID_QUANTITY';
}

/** The value of a quantity in base units (cores, bytes), or undefined if it is not a plain quantity. */
export function parseQuantity(text: string): number | undefined {
  if (typeof text !== 'string' || text.length > 24 || !QUANTITY.test(text)) return undefined;
  const m = /^([\d.]+)(.*)$/.exec(text);
  if (!m) return undefined;
  const factor = SUFFIX[m[2] as string];
  return factor === undefined ? undefined : Number(m[1]) * factor;
}

/**
 * Validates a quantity for `resource`; returns the canonical text to put in the pod spec (the
 * input itself — it passed the strict pattern) or throws QuantityError with a message for people.
 */
export function validateQuantity(resource: ResourceName, text: string, what: string): string {
  const value = parseQuantity(text);
  // JSON.stringify shows a hostile value with its newlines and quotes escaped, never raw.
  if (value === undefined) throw new QuantityError(`${what}: ${JSON.stringify(truncate(text))} is not a Kubernetes quantity (e.g. ${resource === 'cpu' ? '"100m" or "0.5"' : '"128Mi" or "1Gi"'})`);
  const b = QUANTITY_BOUNDS[resource];
  if (value < b.min) throw new QuantityError(`${what}: ${JSON.stringify(text)} is below the minimum of ${b.minText}`);
  if (value > b.max) throw new QuantityError(`${what}: ${JSON.stringify(text)} exceeds the maximum of ${b.maxText} for the sidecar`);
  return text;
}

function truncate(s: string): string {
  return typeof s === 'string' && s.length > 40 ? `${s.slice(0, 40)}…` : String(s);
}
