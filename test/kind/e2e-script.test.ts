/**
 * test/kind/e2e.sh cannot run here (no Docker engine), so CI lints it and checks that what it
 * names exists and agrees: the files it reads, the images it builds ↔ the images values.yaml and
 * the manifests ask for, the Redis image it preloads ↔ examples/k8s/redis.yaml.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';

const ROOT = resolve(import.meta.dirname, '../..');
const SCRIPT = join(ROOT, 'test/kind/e2e.sh');
const text = readFileSync(SCRIPT, 'utf8');
const shellcheck = spawnSync('shellcheck', ['--version']).status === 0;

const variable = (name: string) => {
  const m = new RegExp(`^${name}=(\\S+)$`, 'm').exec(text);
  if (!m?.[1]) throw new Error(`e2e.sh sets no ${name}`);
  return m[1];
};
const images = (file: string): string[] =>
  parseAllDocuments(readFileSync(join(ROOT, file), 'utf8'))
    .map((d) => d.toJS() as { spec?: { template?: { spec?: { containers?: { image: string }[] } }; containers?: { image: string }[] } } | null)
    .flatMap((o) => [...(o?.spec?.template?.spec?.containers ?? []), ...(o?.spec?.containers ?? [])].map((c) => c.image));

describe('test/kind/e2e.sh', () => {
  // Named for what it does: with shellcheck on the machine a full lint, without it a parse only.
  it(shellcheck ? 'is shellcheck-clean' : 'parses with bash -n (shellcheck not installed: lint skipped)', () => {
    const r = shellcheck ? spawnSync('shellcheck', ['--shell=bash', '--external-sources', SCRIPT], { encoding: 'utf8' }) : spawnSync('bash', ['-n', SCRIPT], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is strict, executable, and cleans up the cluster it created unless KEEP_CLUSTER=1', () => {
    expect(text.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(text).toMatch(/^set -euo pipefail$/m);
    expect(spawnSync('test', ['-x', SCRIPT]).status).toBe(0);
    expect(text).toMatch(/^\s*trap cleanup EXIT$/m);
    expect(text).toMatch(/CREATED_CLUSTER -eq 1 && \$KEEP_CLUSTER != 1/);
    for (const tool of ['docker', 'kind', 'kubectl', 'helm']) expect(text).toMatch(new RegExp(`^\\s*require ${tool} '`, 'm'));
  });

  it('reads only files that exist', () => {
    const refs = [...text.matchAll(/"\$(HERE|ROOT)(\/[^"$]*)"/g)].map((m) => (m[1] === 'HERE' ? `test/kind${m[2]}` : (m[2] ?? '').slice(1)));
    const checks = [...text.matchAll(/run_check (\S+\.ts)/g)].map((m) => `test/kind/checks/${m[1]}`);
    const stdin = [...text.matchAll(/<"\$HERE\/(checks\/\S+\.ts)"/g)].map((m) => `test/kind/${m[1]}`);
    const apps = [...text.matchAll(/\$ROOT\/examples\/\$app\/k8s/g)].length ? ['user-service', 'push-hub', 'order-worker'].map((a) => `examples/${a}/k8s/kustomization.yaml`) : [];
    const all = [...new Set([...refs, ...checks, ...stdin, ...apps])].filter((p) => p !== '' && !p.endsWith('/'));
    expect(all).toEqual(expect.arrayContaining(['test/kind/kind-config.yaml', 'test/kind/values.yaml', 'test/kind/client-pod.yaml', 'examples/Dockerfile', 'test/kind/checks/orders.ts']));
    for (const p of all) expect(existsSync(join(ROOT, p)), p).toBe(true);
  });

  it('builds the images that values.yaml, the manifests and the client pod ask for, and preloads the Redis image', () => {
    const values = parse(readFileSync(join(ROOT, 'test/kind/values.yaml'), 'utf8')) as Record<string, { image: { repository: string; tag: string; pullPolicy: string } }>;
    expect(`${values.sidecar?.image.repository}:${values.sidecar?.image.tag}`).toBe(variable('SIDECAR_IMAGE'));
    expect(`${values.operator?.image.repository}:${values.operator?.image.tag}`).toBe(variable('OPERATOR_IMAGE'));
    // Built locally and loaded with `kind load`: a pull could only fail.
    expect(values.sidecar?.image.pullPolicy).toBe('Never');
    expect(values.operator?.image.pullPolicy).toBe('Never');
    const examples = variable('EXAMPLES_IMAGE');
    for (const f of ['examples/user-service/k8s/deployment.yaml', 'examples/push-hub/k8s/deployment.yaml', 'examples/order-worker/k8s/deployment.yaml', 'examples/order-worker/k8s/order-api.yaml', 'test/kind/client-pod.yaml']) {
      expect(images(f), f).toEqual([examples]);
    }
    // REDIS_IMAGE is read from redis.yaml with sed; every Redis there must use that one image.
    const redis = images('examples/k8s/redis.yaml');
    expect(redis).toHaveLength(4);
    const sed = spawnSync('sed', ['-n', 's/^ *image: *\\(redis:[^ ]*\\) *$/\\1/p', join(ROOT, 'examples/k8s/redis.yaml')], { encoding: 'utf8' });
    expect(sed.stdout.trim().split('\n')).toEqual(redis);
    expect(new Set(redis).size).toBe(1);
  });

  it('kind-config.yaml is a kind cluster with workers for the replicas to spread over', () => {
    const cfg = parse(readFileSync(join(ROOT, 'test/kind/kind-config.yaml'), 'utf8')) as { kind: string; apiVersion: string; nodes: { role: string }[] };
    expect(cfg).toMatchObject({ kind: 'Cluster', apiVersion: 'kind.x-k8s.io/v1alpha4' });
    expect(cfg.nodes.filter((n) => n.role === 'worker').length).toBeGreaterThanOrEqual(2);
  });
});
