/**
 * The endpoints an Upstream's sidecars get: a pure function of the Upstream and the
 * EndpointSlices of its Service, so every event order reaches the same list.
 *
 * - Slices belong to a Service through the `kubernetes.io/service-name` label.
 * - The port: a named Service port matches the slice port of that name (named target ports are
 *   resolved per slice by the EndpointSlice controller, so each slice carries the number its pods
 *   use). A numbered one matches a slice port with that number, or the slice's only port.
 * - Ready endpoints (`conditions.ready` true or unset). Only when none is ready anywhere, those
 *   still serving while terminating — better a draining pod than no answer at all.
 */
import type { KubeObject } from './kube-client.ts';

export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

interface SlicePort { name?: string; port?: number; protocol?: string }
interface SliceEndpoint { addresses?: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean } }

export function upstreamEndpoints(upstream: KubeObject, slices: readonly KubeObject[]): string[] {
  const service = upstream.spec?.service as { name?: string; port?: number | string } | undefined;
  if (!service?.name) return [];
  const ready = new Set<string>();
  const terminating = new Set<string>();
  for (const slice of slices) {
    if (slice.metadata.namespace !== upstream.metadata.namespace) continue;
    if (slice.metadata.labels?.[SERVICE_NAME_LABEL] !== service.name) continue;
    const raw = slice as unknown as { addressType?: string; ports?: SlicePort[]; endpoints?: SliceEndpoint[] };
    if (raw.addressType === 'FQDN') continue;
    const port = slicePort(raw.ports ?? [], service.port);
    if (port === undefined) continue;
    for (const ep of raw.endpoints ?? []) {
      const address = ep.addresses?.[0];
      if (!address) continue;
      const hostPort = raw.addressType === 'IPv6' || address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
      const c = ep.conditions ?? {};
      if (c.ready !== false) ready.add(hostPort);
      else if (c.serving === true && c.terminating === true) terminating.add(hostPort);
    }
  }
  return [...(ready.size > 0 ? ready : terminating)].sort();
}

function slicePort(ports: readonly SlicePort[], wanted: number | string | undefined): number | undefined {
  const tcp = ports.filter((p) => (p.protocol ?? 'TCP') === 'TCP' && typeof p.port === 'number');
  if (typeof wanted === 'string') return tcp.find((p) => p.name === wanted)?.port;
  if (typeof wanted === 'number') {
    const exact = tcp.find((p) => p.port === wanted);
    if (exact) return exact.port;
    return tcp.length === 1 ? tcp[0]!.port : undefined;
  }
  return undefined;
}
