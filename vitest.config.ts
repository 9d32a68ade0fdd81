import { configDefaults, defineConfig } from 'vitest/config';

// Integration tests start real redis-server processes, sockets and child sidecars, so they get
// generous timeouts; the machine has two cores, so files run two at a time.
//
// Two projects. `unit` is everything that needs no Kubernetes. `kube` is every *.kube.test.ts: they
// share one real control plane (test/cluster, started by its globalSetup only when such a file
// runs) and run one file at a time, because each runs an operator that watches every namespace
// and some change cluster-scoped objects. `unit` runs first, then `kube`.
const KUBE = '**/*.kube.test.ts';
const ROOTS = ['lib/**/*.test.ts', 'sidecar/test/**/*.test.ts', 'operator/test/**/*.test.ts', 'test/**/*.test.ts', 'examples/**/*.test.ts'];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit', include: ROOTS, exclude: [...configDefaults.exclude, KUBE], sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'kube',
          include: ROOTS.map((r) => r.replace('*.test.ts', '*.kube.test.ts')),
          fileParallelism: false,
          // One worker runs the files one after another with a shared module cache: loading the
          // operator, the sidecar and the Kubernetes client anew cost ~2 s per file. Each file still
          // starts and stops its own operators and sidecars, and TestCluster empties its namespaces.
          isolate: false,
          // One worker here, two in `unit`: vitest runs such projects one group after the other.
          sequence: { groupOrder: 1 },
          globalSetup: ['test/cluster/global-setup.ts'],
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
