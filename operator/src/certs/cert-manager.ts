/**
 * Keeps the webhook's certificates alive: the thin I/O shell around planRotation.
 *
 * One pass (`reconcile`) re-reads the world every time, like a controller:
 *   1. read the Secret; plan; if due, issue and write it (create, or update with its
 *      resourceVersion — a 409 means another replica rotated first, so re-read and use theirs);
 *   2. make the MutatingWebhookConfiguration trust the Secret's CA bundle (JSON Patch);
 *   3. only then hand the certificate to the HTTPS server (`onCertificate`): a replica never
 *      serves a certificate the API server has not been told to trust.
 * The next pass runs at the renewal point or after `resyncMs`, whichever is sooner — the resync
 * is how every replica picks up a rotation made by another, and how a webhook configuration
 * recreated by `helm upgrade` gets its caBundle back. Failures retry with capped backoff.
 *
 * Every replica runs this (not only the leader): each serves the webhook, so each needs the
 * certificate. Optimistic concurrency on the Secret keeps them from issuing two different CAs.
 *
 * The Secret is the operator's, not the chart's, and it outlives the webhook configuration: the
 * configuration is what GitOps tools, `kubectl replace --force` and `helm upgrade --force`
 * recreate, and a CA minted anew on each recreation would break the discovery TLS of every
 * running sidecar (each holds the CA bundle of its pod's creation). So the Secret's owner is the
 * operator's ServiceAccount (`ownerServiceAccount`): `helm uninstall` deletes it, and garbage
 * collection the Secret with it. A Secret owned by a webhook configuration (as earlier versions
 * wrote it) loses that owner at the next pass. Should the Secret vanish anyway while a replica
 * runs, that replica writes back the CA it serves instead of minting a new one.
 *
 * Setting an owner needs `delete` on the Secret where OwnerReferencesPermissionEnforcement is on
 * (OpenShift); blockOwnerDeletion is never set, so no rights on the owner's finalizers are needed.
 */
import { Backoff } from '../../../lib/backoff.ts';
import { silentLogger, type Logger } from '../../../lib/log.ts';
import { isConflict, isNotFound, KubeApiError } from '../errors.ts';
import { resourcePath, type KubeClient, type KubeObject } from '../kube-client.ts';
import { caBundlePatch, type WebhookConfiguration } from './ca-bundle-patch.ts';
import { issueWebhookCerts } from './issue-certs.ts';
import { planRotation, type CertPolicy } from './rotation-plan.ts';
import { certsFromSecretData, certsToSecretData, SECRET_TYPE, type WebhookCerts } from './webhook-certs.ts';

const SECRETS = { group: '', version: 'v1', plural: 'secrets' };
const SERVICE_ACCOUNTS = { group: '', version: 'v1', plural: 'serviceaccounts' };

/** The certificate could not be settled (repeated conflicts, a configuration that keeps changing, stopped). */
export class WebhookCertError extends Error {
  readonly code = 'SLUICE_ERR_WEBHOOK_CERT';
}
const MUTATING_WEBHOOK_CONFIGURATIONS = { group: 'admissionregistration.k8s.io', version: 'v1', plural: 'mutatingwebhookconfigurations' };

export interface CertManagerOptions {
  client: KubeClient;
  namespace: string;
  secretName: string;
  /** The MutatingWebhookConfiguration whose webhooks get the caBundle. */
  webhookConfigName: string;
  /** The ServiceAccount (in `namespace`) that owns the Secret; none: the Secret has no owner. */
  ownerServiceAccount?: string;
  policy: CertPolicy;
  /** Called with the material to serve, whenever it changes (and once at start). */
  onCertificate?: (certs: WebhookCerts) => void;
  /** How often to re-read the Secret and the webhook configuration (default 60s). */
  resyncMs?: number;
  logger?: Logger;
  now?: () => Date;
}

export class CertManager {
  private readonly o: CertManagerOptions & { resyncMs: number; logger: Logger; now: () => Date };
  private served: WebhookCerts | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff = new Backoff({ baseMs: 500, capMs: 30_000 });
  private caBundleTrusted = false;

  constructor(opts: CertManagerOptions) {
    this.o = { resyncMs: 60_000, logger: silentLogger, now: () => new Date(), ...opts };
    if (!(this.o.resyncMs > 0)) throw new RangeError('CertManager: resyncMs must be positive');
  }

  /** The certificate currently handed to the server. */
  get current(): WebhookCerts | undefined {
    return this.served;
  }

  /** Whether the last pass confirmed the webhook configuration trusts the served CA. */
  get trusted(): boolean {
    return this.caBundleTrusted;
  }

  /**
   * Runs passes until one yields a certificate (retrying with backoff), then keeps running them
   * in the background. Resolves with the first certificate to serve.
   */
  async start(): Promise<WebhookCerts> {
    for (;;) {
      if (this.stopped) throw new WebhookCertError('CertManager stopped before it obtained a certificate');
      try {
        const nextAt = await this.reconcile();
        this.backoff.reset();
        this.schedule(nextAt);
        return this.served as WebhookCerts;
      } catch (err) {
        const delay = this.backoff.next();
        this.o.logger.warn('webhook certificate not ready; retrying', { err, retryInMs: Math.round(delay) });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** One pass; returns when the next one is due. */
  async reconcile(): Promise<Date> {
    const { client, namespace, secretName, policy, logger } = this.o;
    const secretPath = resourcePath(SECRETS, namespace, secretName);
    let certs: WebhookCerts | undefined;
    let renewAt: Date | undefined;
    const owner = await this.secretOwner();
    for (let attempt = 0; attempt < 5 && !certs; attempt++) {
      const secret = await getOrUndefined(client, secretPath);
      // No Secret, but a replica that serves a CA: write that CA back rather than mint a new one.
      const observed = secret ? certsFromSecretData(secret.data as Record<string, string> | undefined) : this.served;
      const now = this.o.now();
      const plan = planRotation(observed, policy, now);
      if (plan.action === 'keep' && observed) {
        if (!secret) {
          try {
            await this.writeSecret(undefined, observed, owner);
            logger.warn('certificate Secret was gone; wrote back the CA this replica serves', { secret: `${namespace}/${secretName}` });
          } catch (err) {
            if (err instanceof KubeApiError && err.reason === 'AlreadyExists') continue;
            throw err;
          }
        }
        certs = observed;
        renewAt = plan.renewAt;
        // A Secret from another version or install gets our owner and loses a webhook configuration's.
        if (secret && needsOwnerFix(secret, owner)) await this.adopt(secret, owner).catch((err) => logger.warn('could not set the certificate Secret\'s owner', { err }));
        break;
      }
      if (plan.action === 'keep') break;
      const fresh = issueWebhookCerts(observed, plan.renewCa, policy, now);
      try {
        await this.writeSecret(secret, fresh, owner);
        logger.info('issued webhook certificate', { reason: plan.reason, renewedCa: plan.renewCa, secret: `${namespace}/${secretName}` });
        certs = fresh;
        const next = planRotation(fresh, policy, now);
        renewAt = next.action === 'keep' ? next.renewAt : new Date(now.getTime() + 1000);
      } catch (err) {
        // Another replica wrote first: its certificate is as good as ours; re-read and use it.
        if (isConflict(err) || (err instanceof KubeApiError && err.reason === 'AlreadyExists')) continue;
        throw err;
      }
    }
    if (!certs || !renewAt) throw new WebhookCertError(`could not settle the certificate Secret ${namespace}/${secretName} after repeated conflicts`);

    this.caBundleTrusted = await this.ensureCaBundle(certs.caBundlePem);
    if (!this.served || this.served.certPem !== certs.certPem || this.served.keyPem !== certs.keyPem) {
      this.served = certs;
      this.o.onCertificate?.(certs);
    }
    const resyncAt = new Date(this.o.now().getTime() + this.o.resyncMs);
    return renewAt < resyncAt ? renewAt : resyncAt;
  }

  private async writeSecret(existing: KubeObject | undefined, certs: WebhookCerts, owner: OwnerReference | undefined): Promise<void> {
    const { client, namespace, secretName } = this.o;
    const labels = { 'app.kubernetes.io/managed-by': 'sluice-operator', 'app.kubernetes.io/component': 'webhook' };
    if (!existing) {
      await client.create(resourcePath(SECRETS, namespace), {
        apiVersion: 'v1', kind: 'Secret', type: SECRET_TYPE,
        metadata: { name: secretName, namespace, labels, ...(owner ? { ownerReferences: [owner] } : {}) },
        data: certsToSecretData(certs),
      });
      return;
    }
    // A Secret made by someone else with another type cannot change type; keep theirs.
    await client.replace(resourcePath(SECRETS, namespace, secretName), {
      ...existing,
      metadata: { ...withOwner(existing, owner).metadata, labels: { ...existing.metadata.labels, ...labels } },
      data: { ...(existing.data as Record<string, string> | undefined), ...certsToSecretData(certs) },
    });
  }

  private async adopt(secret: KubeObject, owner: OwnerReference | undefined): Promise<void> {
    await this.o.client.replace(resourcePath(SECRETS, this.o.namespace, this.o.secretName), withOwner(secret, owner));
  }

  /** The operator's ServiceAccount as an owner; undefined when none is configured or it does not exist. */
  private async secretOwner(): Promise<OwnerReference | undefined> {
    if (!this.o.ownerServiceAccount) return undefined;
    const sa = await getOrUndefined(this.o.client, resourcePath(SERVICE_ACCOUNTS, this.o.namespace, this.o.ownerServiceAccount));
    if (!sa?.metadata.uid) return undefined;
    return { apiVersion: 'v1', kind: 'ServiceAccount', name: sa.metadata.name, uid: sa.metadata.uid };
  }

  /** Patches the webhook configuration's caBundle; false when the configuration does not exist (yet). */
  private async ensureCaBundle(caBundlePem: string): Promise<boolean> {
    const { client, webhookConfigName, logger } = this.o;
    const path = resourcePath(MUTATING_WEBHOOK_CONFIGURATIONS, undefined, webhookConfigName);
    for (let attempt = 0; attempt < 3; attempt++) {
      const config = (await getOrUndefined(client, path)) as unknown as WebhookConfiguration | undefined;
      if (!config) {
        // Nothing calls this webhook until the configuration exists; the next resync patches it.
        logger.warn('webhook configuration not found; caBundle not patched yet', { webhookConfig: webhookConfigName });
        return false;
      }
      const ops = caBundlePatch(config, caBundlePem);
      if (ops.length === 0) return true;
      try {
        await client.patch(path, ops, 'json');
        logger.info('patched webhook caBundle', { webhookConfig: webhookConfigName, webhooks: ops.filter((o) => o.op === 'add').length });
        return true;
      } catch (err) {
        // A failed `test` (422) or a conflict: the list changed under us; read it again.
        if (isConflict(err) || (err instanceof KubeApiError && err.statusCode === 422)) continue;
        throw err;
      }
    }
    throw new WebhookCertError(`could not patch the caBundle of ${webhookConfigName}: it kept changing`);
  }

  private schedule(at: Date): void {
    if (this.stopped) return;
    const delay = Math.max(0, Math.min(at.getTime() - this.o.now().getTime(), 2 ** 31 - 1));
    this.timer = setTimeout(() => {
      this.reconcile().then(
        (next) => {
          this.backoff.reset();
          this.schedule(next);
        },
        (err) => {
          const retry = this.backoff.next();
          this.o.logger.warn('webhook certificate pass failed; retrying', { err, retryInMs: Math.round(retry) });
          this.schedule(new Date(this.o.now().getTime() + retry));
        },
      );
    }, delay);
    this.timer.unref?.();
  }
}

interface OwnerReference { apiVersion: string; kind: string; name: string; uid: string }

const refs = (o: KubeObject) => (o.metadata.ownerReferences as OwnerReference[] | undefined) ?? [];
// A webhook configuration as owner would take the CA with it when the configuration is recreated.
const isWebhookConfig = (r: OwnerReference) => r.kind === 'MutatingWebhookConfiguration' && r.apiVersion.startsWith('admissionregistration.k8s.io/');

function needsOwnerFix(o: KubeObject, owner: OwnerReference | undefined): boolean {
  return refs(o).some(isWebhookConfig) || (owner !== undefined && !refs(o).some((r) => r.uid === owner.uid));
}

/**
 * The object with `owner` among its owners: a reference to an earlier object of the same kind and
 * name (recreated) is replaced, and a webhook configuration's is dropped.
 */
function withOwner(o: KubeObject, owner: OwnerReference | undefined): KubeObject {
  if (!needsOwnerFix(o, owner)) return o;
  const others = refs(o).filter((r) => !isWebhookConfig(r) && !(owner && r.kind === owner.kind && r.name === owner.name));
  const ownerReferences = owner ? [...others, owner] : others;
  return { ...o, metadata: { ...o.metadata, ownerReferences: ownerReferences.length ? ownerReferences : null } };
}

async function getOrUndefined(client: KubeClient, path: string): Promise<KubeObject | undefined> {
  try {
    return await client.get(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}
