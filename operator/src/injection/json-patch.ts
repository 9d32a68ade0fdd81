/** RFC 6902 JSON Patch operations, as admission webhooks return them (base64 in `response.patch`). */
export type JsonPatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

/** Escapes one reference token of a JSON Pointer (RFC 6901): `sluice.dev/x` → `sluice.dev~1x`. */
export const pointerToken = (s: string): string => s.replaceAll('~', '~0').replaceAll('/', '~1');
