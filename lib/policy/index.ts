// The policy model shared by the sidecar and the operator: types, validation, compilation.
// Free of I/O so both components (and tests) can import it anywhere.
export * from './types.ts';
export type * from './resource.ts';
export * from './errors.ts';
export * from './duration.ts';
export * from './selector.ts';
export * from './match.ts';
export * from './validate.ts';
export * from './compile.ts';
export * from './producible.ts';
export * from './fencing.ts';
export type * from './plan.ts';
export * from './upstream.ts';
export * from './adaptive.ts';
