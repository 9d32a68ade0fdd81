import { join } from 'node:path';
import { findBinary } from '../cluster/binaries.ts';
import { runCommand, type CommandResult } from './run-command.ts';

export type HelmResult = CommandResult;

/**
 * Runs helm — the one test/cluster/build.sh builds from helm.sh/helm/v3, whose supported
 * Kubernetes range includes the test control plane's — against a kubeconfig, with its own
 * HOME/cache/config dirs (under `workDir`), so tests never read or write the user's helm state.
 */
export async function runHelm(args: string[], { kubeconfig, workDir, timeoutMs = 120_000 }: { kubeconfig: string; workDir: string; timeoutMs?: number }): Promise<HelmResult> {
  const env = {
    ...process.env,
    HOME: workDir,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(workDir, '.helm/cache'),
    HELM_CONFIG_HOME: join(workDir, '.helm/config'),
    HELM_DATA_HOME: join(workDir, '.helm/data'),
  };
  return runCommand(findBinary('helm'), args, { env, timeoutMs });
}
