import { dirname, join } from 'node:path';
import { findBinary } from '../cluster/binaries.ts';
import { runCommand, type CommandResult } from './run-command.ts';

export type KubectlResult = CommandResult;

/**
 * Runs the real `kubectl` built with the test control plane (the same minor version as the API
 * server) against a kubeconfig. The discovery cache goes next to the kubeconfig, so tests
 * neither share nor pollute ~/.kube/cache. `input` is written to stdin (for `kubectl apply -f -`).
 */
export function kubectl(kubeconfig: string, args: string[], { input, timeoutMs = 30_000 }: { input?: string; timeoutMs?: number } = {}): Promise<KubectlResult> {
  return runCommand(findBinary('kubectl'), ['--kubeconfig', kubeconfig, '--cache-dir', join(dirname(kubeconfig), '.kube-cache'), ...args], {
    env: { ...process.env, KUBECONFIG: kubeconfig },
    input,
    timeoutMs,
  });
}
