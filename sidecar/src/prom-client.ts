import { createRequire } from 'node:module';
import type * as PromClient from 'prom-client';

/**
 * prom-client's metric types, registry and default metrics, loaded on their own. The package's
 * entry point also loads its Pushgateway client (node:https, TLS and zlib) and the cluster
 * AggregatorRegistry (node:cluster): about 8 MiB of RSS in every pod, for features the sidecar
 * does not use. prom-client has no `exports` map, so these files are reachable; they are the very
 * modules its index.js re-exports, pinned by the lockfile. Types still come from 'prom-client'.
 */
const require = createRequire(import.meta.url);

export const Registry: typeof PromClient.Registry = require('prom-client/lib/registry');
export type Registry = PromClient.Registry;
export const Counter: typeof PromClient.Counter = require('prom-client/lib/counter');
export type Counter<T extends string = string> = PromClient.Counter<T>;
export const Gauge: typeof PromClient.Gauge = require('prom-client/lib/gauge');
export type Gauge<T extends string = string> = PromClient.Gauge<T>;
export const Histogram: typeof PromClient.Histogram = require('prom-client/lib/histogram');
export type Histogram<T extends string = string> = PromClient.Histogram<T>;
export const collectDefaultMetrics: typeof PromClient.collectDefaultMetrics = require('prom-client/lib/defaultMetrics');
