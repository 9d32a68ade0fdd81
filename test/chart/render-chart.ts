/**
 * `helm template` of charts/sluice, parsed: every rendered document as a plain object. Chart tests
 * assert on these objects (kinds, names, fields), never on the text.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { runHelm, type HelmResult } from '../helpers/helm.ts';

export const CHART = resolve(import.meta.dirname, '../../charts/sluice');

export type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [k: string]: any };

/** Runs helm without a cluster (template, lint): a throwaway HOME and an empty kubeconfig. */
export async function helmOffline(args: string[]): Promise<HelmResult> {
  const work = mkdtempSync(join(tmpdir(), 'sluice-chart-'));
  try {
    const kubeconfig = join(work, 'kubeconfig');
    writeFileSync(kubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
    return await runHelm(args, { kubeconfig, workDir: work });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

export async function renderChart(setValues: string[] = [], { namespace = 'sluice-system', release = 'sluice' } = {}): Promise<Doc[]> {
  const res = await helmOffline(['template', release, CHART, '--namespace', namespace, '--include-crds', ...setValues.flatMap((s) => ['--set', s])]);
  if (res.code !== 0) throw new Error(`helm template failed: ${res.stderr}`);
  const docs: Doc[] = [];
  for (const d of parseAllDocuments(res.stdout)) {
    if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0]?.message}`);
    const obj = d.toJS() as Doc | null;
    if (obj) docs.push(obj);
  }
  return docs;
}

export function find(docs: Doc[], kind: string, name?: string): Doc {
  const hit = docs.find((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  if (!hit) throw new Error(`no ${kind}${name ? ` ${name}` : ''} rendered (have: ${docs.map((d) => `${d.kind}/${d.metadata.name}`).join(', ')})`);
  return hit;
}
