/**
 * vitest globalSetup of the `kube` project: one control plane for the whole run, started only
 * when a Kubernetes test file is selected, stopped (every process, by pid) when the run ends.
 * The test files read where it is through `inject('cluster')`.
 */
import { execFileSync } from 'node:child_process';
import { resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startControlPlane } from './control-plane.ts';
import { OPERATOR_RELEASE, type ClusterInfo } from './cluster-info.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    cluster: ClusterInfo;
  }
}

const ROOT = resolve(import.meta.dirname, '../..');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  const verbose = process.env.SLUICE_TEST_KUBE_LOG === '1';
  const cp = await startControlPlane({
    crdDir: resolve(ROOT, 'crds'),
    // OpenShift's admission plugin: setting an ownerReference needs `delete` on the object. On for
    // every file, so the chart's RBAC is proven against it everywhere the operator sets an owner.
    extraApiServerArgs: ['--enable-admission-plugins=OwnerReferencesPermissionEnforcement'],
    log: verbose ? (l) => process.stderr.write(`[cluster] ${l}\n`) : undefined });
  try {
    // The operator's own RBAC, exactly as the chart renders it: tests run the operator as this
    // service account, so a permission the chart forgot is a 403 and a failed test.
    const rbac = execFileSync(cp.binaries.helm, ['template', OPERATOR_RELEASE.name, resolve(ROOT, 'charts/sluice'),
      '--namespace', OPERATOR_RELEASE.namespace,
      '--show-only', 'templates/serviceaccount.yaml', '--show-only', 'templates/clusterrole.yaml', '--show-only', 'templates/role.yaml'], { encoding: 'utf8', timeout: 60_000 });
    execFileSync(cp.binaries.kubectl, ['--kubeconfig', cp.kubeconfigPath, 'create', 'namespace', OPERATOR_RELEASE.namespace], { timeout: 30_000 });
    execFileSync(cp.binaries.kubectl, ['--kubeconfig', cp.kubeconfigPath, 'apply', '-f', '-'], { input: rbac, timeout: 30_000 });
  } catch (err) {
    await cp.stop();
    throw err;
  }
  const info: ClusterInfo = {
    dir: cp.dir, server: cp.server, etcd: cp.etcd, kubeconfigPath: cp.kubeconfigPath, auditLogPath: cp.auditLogPath,
    binaries: cp.binaries, caCertPath: cp.pki.caCert, pids: cp.pids,
  };
  project.provide('cluster', info);
  // An interrupted run may exit before the teardown below has stopped everything.
  process.once('exit', cp.killNow);
  if (verbose) process.stderr.write(`[cluster] ready in ${Date.now() - started} ms: KUBECONFIG=${cp.kubeconfigPath}\n`);
  return async () => {
    await cp.stop();
    process.removeListener('exit', cp.killNow);
  };
}
