import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { resolve } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';

const MAIN = resolve(import.meta.dirname, 'main.ts');

describe('npm run kube-test-server', () => {
  it('prints the kubeconfig path first, serves the CRDs, and exits cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const firstLine = await new Promise<string>((res, rej) => {
        createInterface({ input: child.stdout }).once('line', res);
        child.once('exit', (code) => rej(new Error(`exited early with ${code}`)));
      });
      expect(existsSync(firstLine)).toBe(true);
      const kc = new KubeConfig();
      kc.loadFromString(readFileSync(firstLine, 'utf8'));
      expect(kc.getCurrentCluster()?.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const ns = await kc.makeApiClient(CoreV1Api).listNamespace();
      expect(ns.items.map((n) => n.metadata?.name)).toContain('default');
      const rlps = await kc.makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: 'sluice.dev', version: 'v1alpha1', plural: 'ratelimitpolicies' });
      expect(rlps.items).toEqual([]);
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(existsSync(firstLine)).toBe(false);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
