import type { Binaries } from './binaries.ts';

/** What the test files learn of the run's control plane (vitest `inject('cluster')`). */
export interface ClusterInfo {
  dir: string;
  server: string;
  etcd: string;
  /** Admin (system:masters): for the tests' own reads and writes, never for the operator. */
  kubeconfigPath: string;
  auditLogPath: string;
  caCertPath: string;
  binaries: Binaries;
  pids: Record<string, number>;
}

/** The chart release whose RBAC the tests install and whose service account runs the operator. */
export const OPERATOR_RELEASE = {
  name: 'sluice',
  namespace: 'sluice-system',
  serviceAccount: 'sluice',
  leaseName: 'sluice-operator',
} as const;
