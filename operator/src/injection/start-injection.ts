/**
 * Starts sidecar injection inside the operator: the certificate manager first (a server cannot
 * listen on TLS without a certificate), then the HTTPS webhook server, with the manager feeding
 * every rotated certificate into the running server.
 *
 * Wiring, from the operator's start-up:
 *   const injection = injectionOptionsFromEnv(process.env, client, logger, registry);
 *   if (injection) handle = await startInjection(injection);   // ... await handle.stop() on shutdown
 * The chart sets the env vars below; without SLUICE_OPERATOR_INJECTION_CONFIG injection is off
 * (e.g. an operator run from a laptop against a cluster).
 *
 * With `discovery` set, the same certificate also secures PolicyDiscovery: its
 * SANs gain the discovery Service's names, every certificate (first and rotated) is handed to
 * `discovery.onCertificate`, and injected sidecars get the live CA bundle in SLUICE_OPERATOR_CA.
 */
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import { silentLogger, type Logger } from '../../../lib/log.ts';
import { CertManager } from '../certs/cert-manager.ts';
import type { WebhookCerts } from '../certs/webhook-certs.ts';
import { certPolicy, type CertPolicy } from '../certs/rotation-plan.ts';
import { resourcePath, type KubeClient } from '../kube-client.ts';
import { compileInjectionConfig, InjectionConfigError, type InjectionValues } from './injection-config.ts';
import { namespaceCpuRules, type NamespaceCpuRules } from './namespace-cpu-rules.ts';
import { startWebhookServer, type WebhookServer } from './webhook-server.ts';

export interface StartInjectionOptions {
  client: KubeClient;
  /** The operator's namespace: where the certificate Secret lives and the Service points. */
  namespace: string;
  serviceName: string;
  secretName: string;
  webhookConfigName: string;
  /** The operator's ServiceAccount, owner of the certificate Secret (see cert-manager.ts); none: no owner. */
  ownerServiceAccount?: string;
  /** host:port or :port for the HTTPS listener. */
  listen: string;
  values: InjectionValues;
  certPolicy?: Partial<Pick<CertPolicy, 'caLifetimeMs' | 'servingLifetimeMs' | 'renewFraction' | 'backdateMs'>>;
  resyncMs?: number;
  logger?: Logger;
  registry?: Registry;
  /**
   * Where the API server reaches the webhook when the configuration names a URL rather than the
   * Service (clusters whose API server cannot dial Services, local control planes): its host joins
   * the certificate's names, as an iPAddress name when it is an address.
   */
  webhookUrl?: string;
  /** Serve PolicyDiscovery with this certificate too (see the header). */
  discovery?: {
    /** The discovery Service (in `namespace`), e.g. sluice-discovery. */
    serviceName: string;
    onCertificate: (certs: WebhookCerts) => unknown;
  };
}

export interface Injection {
  readonly port: number;
  readonly certs: CertManager;
  readonly server: WebhookServer;
  stop(): Promise<void>;
}

export async function startInjection(o: StartInjectionOptions): Promise<Injection> {
  const logger = (o.logger ?? silentLogger).child({ component: 'injection' });
  const config = compileInjectionConfig(o.values);
  const { host, port } = parseListen(o.listen);
  let server: WebhookServer | undefined;
  const certs = new CertManager({
    client: o.client,
    namespace: o.namespace,
    secretName: o.secretName,
    webhookConfigName: o.webhookConfigName,
    ...(o.ownerServiceAccount ? { ownerServiceAccount: o.ownerServiceAccount } : {}),
    policy: certPolicy({
      ...o.certPolicy,
      // The names the API server dials: service.namespace.svc (and the cluster.local form some tools use).
      dnsNames: [
        ...serviceDnsNames([o.serviceName, ...(o.discovery ? [o.discovery.serviceName] : [])], o.namespace),
        ...(o.webhookUrl ? [webhookUrlHost(o.webhookUrl)] : []),
      ],
      caCommonName: `${o.serviceName}.${o.namespace} webhook CA`,
    }),
    onCertificate: (c) => {
      server?.setCertificate(c);
      // A rebind failure is logged; the next pass (or rotation) tries again.
      if (o.discovery) Promise.resolve(o.discovery.onCertificate(c)).catch((err: unknown) => logger.error('discovery certificate not applied', { err }));
    },
    ...(o.resyncMs !== undefined ? { resyncMs: o.resyncMs } : {}),
    logger,
  });
  const first = await certs.start();
  try {
    server = await startWebhookServer({
      host, port, cert: first, config, logger,
      ...(o.registry ? { registry: o.registry } : {}),
      ready: () => certs.current !== undefined,
      namespaceCpu: (ns) => readNamespaceCpuRules(o.client, ns),
      // Sidecars trust the CA bundle current when their pod is created.
      ...(o.discovery ? { operatorCa: () => certs.current?.caBundlePem } : {}),
    });
  } catch (err) {
    certs.stop();
    throw err;
  }
  logger.info('sidecar injection webhook listening', { port: server.port, image: config.image });
  const s = server;
  return {
    port: s.port,
    certs,
    server: s,
    async stop() {
      certs.stop();
      await s.close();
    },
  };
}

const QUOTAS = { group: '', version: 'v1', plural: 'resourcequotas' };
const LIMIT_RANGES = { group: '', version: 'v1', plural: 'limitranges' };
// Well inside the webhook's timeoutSeconds: a slow API server costs the pod its CPU limit, not its admission.
const RULES_TIMEOUT_MS = 2_000;

/** Lists the namespace's ResourceQuotas and LimitRanges (a handful each) at admission time. */
export async function readNamespaceCpuRules(client: KubeClient, namespace: string): Promise<NamespaceCpuRules> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${RULES_TIMEOUT_MS} ms`)), RULES_TIMEOUT_MS);
  });
  try {
    const [quotas, ranges] = await Promise.race([
      Promise.all([client.list(resourcePath(QUOTAS, namespace)), client.list(resourcePath(LIMIT_RANGES, namespace))]),
      timeout,
    ]);
    return namespaceCpuRules(quotas.items as never[], ranges.items as never[]);
  } finally {
    clearTimeout(timer);
  }
}

/** The names a client dials for each Service: name.ns.svc and the cluster.local form some tools use. */
export function serviceDnsNames(services: readonly string[], namespace: string): string[] {
  return [...new Set(services)].flatMap((s) => [`${s}.${namespace}.svc`, `${s}.${namespace}.svc.cluster.local`]);
}

/** The host of a webhook URL, as the certificate must name it (IPv6 without brackets). */
export function webhookUrlHost(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InjectionConfigError(`webhook URL ${JSON.stringify(url)} is not a URL`);
  }
  if (u.protocol !== 'https:') throw new InjectionConfigError(`webhook URL ${JSON.stringify(url)} must be https (the API server only calls webhooks over TLS)`);
  return u.hostname.replace(/^\[|\]$/g, '');
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(listen);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new InjectionConfigError(`webhook listen address ${JSON.stringify(listen)} must be host:port or :port`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, '') || '0.0.0.0', port };
}

/**
 * Options from the environment the chart gives the operator:
 *   SLUICE_OPERATOR_INJECTION_CONFIG  path of the injection JSON (the chart's ConfigMap); unset = off
 *   SLUICE_OPERATOR_WEBHOOK_LISTEN    default :9443
 *   SLUICE_OPERATOR_WEBHOOK_SERVICE   default sluice-webhook
 *   SLUICE_OPERATOR_WEBHOOK_SECRET    default sluice-webhook-tls
 *   SLUICE_OPERATOR_WEBHOOK_CONFIG    default sluice-sidecar-injector
 *   SLUICE_OPERATOR_SERVICE_ACCOUNT   optional: the operator's ServiceAccount, owner of the certificate Secret
 *   SLUICE_OPERATOR_WEBHOOK_URL       optional: the URL the webhook configuration names instead of the Service
 *   POD_NAMESPACE                     the operator's namespace (downward API)
 */
export function injectionOptionsFromEnv(env: NodeJS.ProcessEnv, client: KubeClient, logger?: Logger, registry?: Registry): StartInjectionOptions | undefined {
  const file = env.SLUICE_OPERATOR_INJECTION_CONFIG;
  if (!file) return undefined;
  let values: InjectionValues;
  try {
    values = JSON.parse(readFileSync(file, 'utf8')) as InjectionValues;
  } catch (err) {
    throw new InjectionConfigError(`cannot read injection config ${file}: ${(err as Error).message}`);
  }
  const namespace = env.POD_NAMESPACE;
  if (!namespace) throw new InjectionConfigError('POD_NAMESPACE must be set (the operator\'s namespace) when injection is on');
  return {
    client,
    namespace,
    serviceName: env.SLUICE_OPERATOR_WEBHOOK_SERVICE || 'sluice-webhook',
    secretName: env.SLUICE_OPERATOR_WEBHOOK_SECRET || 'sluice-webhook-tls',
    webhookConfigName: env.SLUICE_OPERATOR_WEBHOOK_CONFIG || 'sluice-sidecar-injector',
    listen: env.SLUICE_OPERATOR_WEBHOOK_LISTEN || ':9443',
    ...(env.SLUICE_OPERATOR_SERVICE_ACCOUNT ? { ownerServiceAccount: env.SLUICE_OPERATOR_SERVICE_ACCOUNT } : {}),
    ...(env.SLUICE_OPERATOR_WEBHOOK_URL ? { webhookUrl: env.SLUICE_OPERATOR_WEBHOOK_URL } : {}),
    values,
    ...(logger ? { logger } : {}),
    ...(registry ? { registry } : {}),
  };
}
