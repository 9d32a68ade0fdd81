/**
 * A real Kubernetes control plane on loopback, the way controller-runtime's envtest runs one, plus
 * what envtest leaves out so that Deployments get Pods: etcd; kube-apiserver with RBAC, the
 * service-account issuer and an audit log; kube-controller-manager (service accounts, namespaces,
 * garbage collection, Deployments, ReplicaSets, EndpointSlices); kube-scheduler; and kwok, which
 * plays the kubelet for fake Nodes (scheduled Pods become Running, with an IP).
 *
 * Every process runs from the binaries binaries.ts finds, logs to a file in the run directory, and
 * is stopped by its pid — on failure too. A process that exits before it is ready is an error that
 * names it and shows the end of its log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from '../../lib/net.ts';
import { findBinaries, findKwokStages, type Binaries } from './binaries.ts';
import { createPki, kubeconfig, type Pki } from './pki.ts';

export interface ControlPlaneOptions {
  /** Fake nodes kwok manages (default 2). */
  nodes?: number;
  /** CRDs applied once the API is up (a folder for `kubectl apply -f`), or none. */
  crdDir?: string;
  /** Where logs, certificates, etcd data and kubeconfigs go (default: a new temp folder, removed on stop). */
  dir?: string;
  log?: (line: string) => void;
  /** More kube-apiserver flags, e.g. `--enable-admission-plugins=OwnerReferencesPermissionEnforcement`. */
  extraApiServerArgs?: string[];
}

export interface ControlPlane {
  dir: string;
  server: string;
  /** etcd's client URL (plain HTTP on loopback). */
  etcd: string;
  binaries: Binaries;
  pki: Pki;
  /** The admin kubeconfig (group system:masters): for tests and people, never for the operator. */
  kubeconfigPath: string;
  auditLogPath: string;
  /** pid of each process, for people and for leak checks. */
  pids: Record<string, number>;
  stop(): Promise<void>;
  /** SIGKILL to every process at once, synchronously: for an `exit` handler, when stop() cannot run. */
  killNow(): void;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  # Service accounts are what Sluice's own components run as: every request they make is
  # recorded, so a test can prove the operator's RBAC is enough (no 403 in the log).
  - level: Metadata
    userGroups: ["system:serviceaccounts"]
  - level: None
`;

class ManagedProcess {
  readonly name: string;
  readonly logPath: string;
  readonly child: ChildProcess;
  private exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(name: string, bin: string, args: string[], dir: string) {
    this.name = name;
    this.logPath = join(dir, `${name}.log`);
    const fd = openSync(this.logPath, 'a');
    this.child = spawn(bin, args, { cwd: dir, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    this.child.on('exit', (code, signal) => (this.exited = { code, signal }));
    this.child.on('error', () => (this.exited = { code: -1, signal: null }));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.exited === undefined;
  }

  /** The error to throw when it died: names the process, its log and the log's end. */
  failure(what: string): Error {
    let tail = '';
    try {
      tail = readFileSync(this.logPath, 'utf8').split('\n').slice(-25).join('\n');
    } catch {}
    const how = this.exited ? `exited (code ${this.exited.code}, signal ${this.exited.signal})` : 'is still running';
    return new Error(`${this.name} ${what}: it ${how}; its log is ${this.logPath}\n${tail}`);
  }

  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await done;
    clearTimeout(timer);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** GET over HTTPS with the admin certificate: the status code, or 0 when nothing answered. */
function httpsStatus(url: string, pki: Pki, timeoutMs = 2_000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, {
      ca: readFileSync(pki.caCert), cert: readFileSync(pki.clients.admin.cert), key: readFileSync(pki.clients.admin.key),
      timeout: timeoutMs,
    }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
    req.end();
  });
}

async function waitFor(proc: ManagedProcess, what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!proc.running) throw proc.failure(`stopped before it was ${what}`);
    if (await check()) return;
    if (Date.now() > deadline) throw proc.failure(`was not ${what} within ${timeoutMs / 1000} s`);
    await sleep(200);
  }
}

function runKubectl(cp: { binaries: Binaries; kubeconfigPath: string }, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cp.binaries.kubectl, ['--kubeconfig', cp.kubeconfigPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`kubectl ${args.join(' ')} failed (${code}): ${err}`));
    });
    child.stdin.end(input ?? '');
  });
}

function kwokNode(name: string): string {
  return `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    kwok.x-k8s.io/node: fake
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: ${name}
    kubernetes.io/os: linux
    type: kwok
status:
  allocatable: {cpu: "32", memory: 256Gi, pods: "110"}
  capacity: {cpu: "32", memory: 256Gi, pods: "110"}
---
`;
}

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const binaries = findBinaries();
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'sluice-cluster-'));
  mkdirSync(dir, { recursive: true });
  const log = opts.log ?? (() => {});
  const procs: ManagedProcess[] = [];
  const stop = async () => {
    for (const p of [...procs].reverse()) await p.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pki = createPki(dir);
    const [etcdClient, etcdPeer, apiPort, kcmPort, schedPort, kwokPort] = await freePorts(6);
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfigPath = join(dir, 'admin.kubeconfig');
    writeFileSync(kubeconfigPath, kubeconfig(server, pki.caCert, pki.clients.admin), { mode: 0o600 });
    writeFileSync(join(dir, 'controller-manager.kubeconfig'), kubeconfig(server, pki.caCert, pki.clients.controllerManager), { mode: 0o600 });
    writeFileSync(join(dir, 'scheduler.kubeconfig'), kubeconfig(server, pki.caCert, pki.clients.scheduler), { mode: 0o600 });
    writeFileSync(join(dir, 'audit-policy.yaml'), AUDIT_POLICY);
    const auditLogPath = join(dir, 'audit.log');

    log(`etcd on 127.0.0.1:${etcdClient}`);
    const etcd = new ManagedProcess('etcd', binaries.etcd, [
      '--name=default', `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdClient}`, `--advertise-client-urls=http://127.0.0.1:${etcdClient}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`, `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
      `--initial-cluster=default=http://127.0.0.1:${etcdPeer}`,
      // A test cluster's data is thrown away: no fsync makes every write a memory write.
      '--unsafe-no-fsync', '--log-level=warn',
    ], dir);
    procs.push(etcd);
    await waitFor(etcd, 'serving', async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${etcdClient}/health`, { signal: AbortSignal.timeout(1_000) });
        return res.ok;
      } catch {
        return false;
      }
    }, 30_000);

    log(`kube-apiserver on ${server}`);
    const apiserver = new ManagedProcess('kube-apiserver', binaries['kube-apiserver'], [
      `--etcd-servers=http://127.0.0.1:${etcdClient}`,
      '--bind-address=127.0.0.1', '--advertise-address=127.0.0.1', `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.servingCert}`, `--tls-private-key-file=${pki.servingKey}`, `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`, `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--authorization-mode=Node,RBAC',
      `--audit-policy-file=${join(dir, 'audit-policy.yaml')}`, `--audit-log-path=${auditLogPath}`, '--audit-log-format=json',
      '--allow-privileged=true',
      // The API server's own address is loopback, which EndpointSlices may not carry: nothing here
      // reaches the kubernetes Service through its endpoints, so the reconciler is off.
      '--endpoint-reconciler-type=none',
      // ConfigMap watches go straight to etcd, so a test can expire a resourceVersion for real by
      // compacting etcd (the watch cache would otherwise keep serving it).
      '--watch-cache-sizes=configmaps#0',
      '--profiling=false',
      ...(opts.extraApiServerArgs ?? []),
    ], dir);
    procs.push(apiserver);
    const pkiReady = pki;
    await waitFor(apiserver, 'ready', async () => (await httpsStatus(`${server}/readyz`, pkiReady)) === 200, 120_000);

    const cp = { binaries, kubeconfigPath };
    log('kube-controller-manager, kube-scheduler, kwok');
    const kcm = new ManagedProcess('kube-controller-manager', binaries['kube-controller-manager'], [
      `--kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      `--authentication-kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      `--authorization-kubeconfig=${join(dir, 'controller-manager.kubeconfig')}`,
      '--bind-address=127.0.0.1', `--secure-port=${kcmPort}`,
      '--leader-elect=false',
      // Each controller acts as its own service account, with the bootstrap RBAC roles it is
      // meant to have: the same least privilege as a kubeadm cluster.
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.serviceAccountKey}`, `--root-ca-file=${pki.caCert}`,
      `--cluster-signing-cert-file=${pki.caCert}`, `--cluster-signing-key-file=${pki.caKey}`,
      // Quick garbage collection and namespace cleanup: tests delete and recreate.
      '--concurrent-gc-syncs=10', '--namespace-sync-period=10s',
      // kwok renews the nodes' leases; on a busy test machine a late renewal must not mark a node
      // unreachable, taint it and evict its pods in the middle of a test.
      '--node-monitor-grace-period=10m',
    ], dir);
    const scheduler = new ManagedProcess('kube-scheduler', binaries['kube-scheduler'], [
      `--kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      `--authentication-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      `--authorization-kubeconfig=${join(dir, 'scheduler.kubeconfig')}`,
      '--bind-address=127.0.0.1', `--secure-port=${schedPort}`, '--leader-elect=false',
    ], dir);
    const kwok = new ManagedProcess('kwok', binaries.kwok, [
      `--kubeconfig=${kubeconfigPath}`, `--config=${findKwokStages()}`,
      '--manage-all-nodes=false', '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      `--server-address=127.0.0.1:${kwokPort}`, '--cidr=10.244.0.0/16', '--node-ip=10.0.0.1',
    ], dir);
    procs.push(kcm, scheduler, kwok);

    const nodes = opts.nodes ?? 2;
    await runKubectl(cp, ['apply', '-f', '-'], Array.from({ length: nodes }, (_, i) => kwokNode(`kwok-node-${i}`)).join(''));
    if (opts.crdDir) await runKubectl(cp, ['apply', '--server-side', '-f', opts.crdDir]);

    // Ready means: nodes Ready (kwok is up), service accounts minted (the controller-manager is
    // up), the scheduler answering. Pods can be created and scheduled from here on.
    const deadline = Date.now() + 120_000;
    for (;;) {
      for (const p of [kcm, scheduler, kwok]) if (!p.running) throw p.failure('stopped while the control plane was starting');
      const ready = await runKubectl(cp, ['get', 'nodes', '-o', 'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{" "}{end}']).catch(() => '');
      const sa = await runKubectl(cp, ['get', 'serviceaccount', 'default', '-n', 'default', '-o', 'name']).catch(() => '');
      const readyNodes = ready.split(' ').filter((s) => s === 'True').length;
      if (readyNodes >= nodes && sa.trim() !== '') break;
      if (Date.now() > deadline) {
        throw (readyNodes < nodes ? kwok : kcm).failure(`left the control plane unready (${readyNodes}/${nodes} nodes Ready, default service account ${sa.trim() ? 'present' : 'missing'})`);
      }
      await sleep(300);
    }
    if (opts.crdDir) await runKubectl(cp, ['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);

    const pids = Object.fromEntries(procs.map((p) => [p.name, p.pid]));
    const killNow = () => {
      for (const p of procs) if (p.running) p.child.kill('SIGKILL');
    };
    return { dir, server, etcd: `http://127.0.0.1:${etcdClient}`, binaries, pki, kubeconfigPath, auditLogPath, pids, stop, killNow };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}

/** True while a pid is alive (a leak check for stop()). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The audit log's complete entries. The apiserver may be writing the last line as it is read:
 * only a line that ends with a newline is complete.
 */
export function auditEntries(path: string): Array<Record<string, any>> {
  if (!existsSync(path)) return [];
  const lines = readFileSync(path, 'utf8').split('\n');
  lines.pop(); // '' after the last newline, or a line still being written
  return lines.filter(Boolean).map((l) => JSON.parse(l));
}
