/**
 * The operator as a real process (`node operator/bin/sluice-operator.ts`), for tests that kill
 * it: SIGKILL leaves no chance to release the lease or say goodbye to sidecars.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { eventually } from '../../../test/helpers/eventually.ts';
import { freePort } from '../../../lib/net.ts';
import type { TestCluster } from './cluster.ts';
import { OPERATOR_RELEASE } from '../../../test/cluster/cluster-info.ts';

const BIN = fileURLToPath(new URL('../../bin/sluice-operator.ts', import.meta.url));

export interface OperatorProcess {
  id: string;
  proc: ChildProcess;
  /** host:port of its PolicyDiscovery server. */
  address: string;
  admin: string;
  readyz(): Promise<{ isLeader: boolean; holder?: string } | undefined>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export async function spawnOperator(cluster: TestCluster, id: string, ports?: { discovery: number; admin: number }): Promise<OperatorProcess> {
  const discovery = ports?.discovery ?? (await freePort());
  const admin = ports?.admin ?? (await freePort());
  const proc = spawn(process.execPath, [
    BIN,
    '--kubeconfig', cluster.operatorKubeconfigPath,
    '--discovery', `127.0.0.1:${discovery}`,
    '--admin', `127.0.0.1:${admin}`,
    '--id', id,
    '--lease-namespace', OPERATOR_RELEASE.namespace, '--lease-name', OPERATOR_RELEASE.leaseName,
    '--lease-duration', '2s', '--renew-deadline', '1500ms', '--retry-period', '300ms',
    '--log-level', process.env.SLUICE_TEST_LOG === '1' ? 'debug' : 'warn',
  ], { stdio: ['ignore', 'inherit', 'inherit'] });
  const p: OperatorProcess = {
    id,
    proc,
    address: `127.0.0.1:${discovery}`,
    admin: `http://127.0.0.1:${admin}`,
    readyz: async () => {
      try {
        const res = await fetch(`http://127.0.0.1:${admin}/readyz`);
        return res.ok ? ((await res.json()) as { isLeader: boolean; holder?: string }) : undefined;
      } catch {
        return undefined;
      }
    },
    kill: (signal = 'SIGKILL') =>
      new Promise((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill(signal);
      }),
  };
  await eventually(async () => {
    if (proc.exitCode !== null) throw new Error(`operator ${id} exited with ${proc.exitCode}`);
    if (!(await p.readyz())) throw new Error(`operator ${id} not ready`);
  }, { timeoutMs: 20_000, intervalMs: 100 });
  return p;
}
