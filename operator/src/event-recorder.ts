/**
 * Kubernetes Events on condition transitions and on circuit transitions reported by sidecars
 * (what `kubectl describe` shows under Events).
 * Best effort: an Event that cannot be written is logged, never retried, and never fails a
 * reconcile — status is the record of truth, Events are the narrative.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../lib/log.ts';
import { EVENTS } from './kinds.ts';
import { resourcePath, type KubeClient, type KubeObject } from './kube-client.ts';

export type EventType = 'Normal' | 'Warning';

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly logger: Logger;
  private readonly component: string;
  private readonly instance: string;

  constructor(opts: { client: KubeClient; logger: Logger; component?: string; instance: string }) {
    this.client = opts.client;
    this.logger = opts.logger;
    this.component = opts.component ?? 'sluice-operator';
    this.instance = opts.instance;
  }

  record(obj: KubeObject, type: EventType, reason: string, message: string): void {
    const ns = obj.metadata.namespace ?? 'default';
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const event = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${obj.metadata.name}.${Date.now().toString(16)}${randomBytes(3).toString('hex')}`, namespace: ns },
      involvedObject: {
        apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns,
        uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion,
      },
      reason,
      message: message.slice(0, 1024),
      type,
      source: { component: this.component },
      reportingComponent: `sluice.dev/${this.component}`,
      reportingInstance: this.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    this.client.create(resourcePath(EVENTS, ns), event).catch((err: Error) => this.logger.warn('could not record event', { reason, object: `${ns}/${obj.metadata.name}`, err }));
  }
}
