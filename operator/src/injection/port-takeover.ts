/**
 * Port-name takeover: how traffic reaches the sidecar without iptables or privileges.
 *
 * Services that send to a *named* target port (`targetPort: http`) resolve the name per pod. If
 * the app's port named `http` is renamed `app-http` and the sidecar declares a port named `http`
 * (on 15080), the same Service now delivers to the sidecar, which forwards to the app on
 * 127.0.0.1:<the app's port>. No Service changes, no NET_ADMIN.
 *
 * The rename is what makes it work: the endpoints controller looks a named target port up in the
 * app containers first and only then in native sidecars (restartable init containers, ≥ 1.29),
 * so while the app still declared `http`, the app would win.
 *
 * Ports the app declares only by number (`targetPort: 8080`) are left alone: a Service that
 * targets a number would keep reaching the app directly whatever we did to the pod, and taking
 * over a number would mean moving the app's listener, which only the app can do. Such traffic
 * bypasses the sidecar; the chart README says so.
 *
 * Probes and lifecycle hooks of the app container that refer to the renamed port by name are
 * renamed with it: named probe ports resolve within their own container, so they would otherwise
 * point at nothing. Pure; returns the JSON Patch ops and what the sidecar must forward to.
 */
import { pointerToken, type JsonPatchOp } from './json-patch.ts';

/** The names taken over, the sidecar port that takes each, and the app's new name for its port. */
export const TAKEN_OVER = [
  { name: 'http', sidecarPort: 15080, renameTo: 'app-http' },
  { name: 'grpc', sidecarPort: 15081, renameTo: 'app-grpc' },
] as const;

export type TakenOverName = (typeof TAKEN_OVER)[number]['name'];

export interface ContainerPort { name?: string; containerPort?: number; protocol?: string }
interface PortRef { port?: number | string }
interface Handler { httpGet?: PortRef; tcpSocket?: PortRef }
export interface AppContainer {
  name?: string;
  ports?: ContainerPort[];
  livenessProbe?: Handler;
  readinessProbe?: Handler;
  startupProbe?: Handler;
  lifecycle?: { postStart?: Handler; preStop?: Handler };
}

export interface TakeoverPlan {
  ops: JsonPatchOp[];
  /** The app's port number per taken-over name (what SLUICE_APP_HTTP / _GRPC point at). */
  appPorts: Partial<Record<TakenOverName, number>>;
}

export class PortTakeoverError extends Error {
  readonly code = 'SLUICE_ERR_PORT_TAKEOVER';
}

export function planPortTakeover(containers: readonly AppContainer[]): TakeoverPlan {
  const ops: JsonPatchOp[] = [];
  const appPorts: TakeoverPlan['appPorts'] = {};
  for (const t of TAKEN_OVER) {
    const owners: { ci: number; pi: number; port: ContainerPort }[] = [];
    containers.forEach((c, ci) => (c.ports ?? []).forEach((port, pi) => {
      if (port.name === t.name && (port.protocol ?? 'TCP') === 'TCP') owners.push({ ci, pi, port });
    }));
    if (owners.length === 0) continue;
    if (owners.length > 1) {
      const names = owners.map((o) => containers[o.ci]?.name ?? `#${o.ci}`).join(', ');
      // Port names must be unique in a pod anyway; and the sidecar can forward a name to one port only.
      throw new PortTakeoverError(`port name "${t.name}" is declared by more than one container (${names}); rename all but one, or opt the pod out with sluice.dev/inject: "false"`);
    }
    const { ci, pi, port } = owners[0] as (typeof owners)[number];
    const taken = containers.some((c) => (c.ports ?? []).some((p) => p.name === t.renameTo));
    if (taken) throw new PortTakeoverError(`the pod already has a port named "${t.renameTo}", which port-name takeover needs for "${t.name}"`);
    if (typeof port.containerPort !== 'number') throw new PortTakeoverError(`port "${t.name}" of container "${containers[ci]?.name}" has no containerPort`);
    ops.push({ op: 'replace', path: `/spec/containers/${ci}/ports/${pi}/name`, value: t.renameTo });
    appPorts[t.name] = port.containerPort;
    ops.push(...renameHandlerPorts(containers[ci] as AppContainer, ci, t.name, t.renameTo));
  }
  return { ops, appPorts };
}

function renameHandlerPorts(c: AppContainer, ci: number, from: string, to: string): JsonPatchOp[] {
  const ops: JsonPatchOp[] = [];
  const visit = (h: Handler | undefined, path: string) => {
    if (h?.httpGet?.port === from) ops.push({ op: 'replace', path: `${path}/httpGet/port`, value: to });
    if (h?.tcpSocket?.port === from) ops.push({ op: 'replace', path: `${path}/tcpSocket/port`, value: to });
  };
  const base = `/spec/containers/${ci}`;
  for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const) visit(c[probe], `${base}/${pointerToken(probe)}`);
  for (const hook of ['postStart', 'preStop'] as const) visit(c.lifecycle?.[hook], `${base}/lifecycle/${hook}`);
  return ops;
}
