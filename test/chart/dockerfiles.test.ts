/**
 * The operator and sidecar Dockerfiles, checked without a Docker engine: parsed instruction by
 * instruction for the properties the chart relies on (node:24-slim, production dependencies only,
 * a numeric non-root user matching runAsUser 65532, exec-form ENTRYPOINT), and the ENTRYPOINT's
 * whole relative-import graph checked against what the image copies — a missing directory would
 * otherwise only show up as a crash-looping pod.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

interface Instruction { cmd: string; args: string }

function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (!pending && line === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (!full) continue;
    const m = /^(\S+)\s*(.*)$/.exec(full) as RegExpExecArray;
    out.push({ cmd: (m[1] as string).toUpperCase(), args: m[2] as string });
  }
  return out;
}

/** The instructions of each build stage. */
function stages(ins: Instruction[]): Instruction[][] {
  const out: Instruction[][] = [];
  for (const i of ins) {
    if (i.cmd === 'FROM') out.push([]);
    out[out.length - 1]?.push(i);
  }
  return out;
}

/** Every repository file reachable from `entry` through relative imports. */
function importGraph(entry: string): Set<string> {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    if (!file.endsWith('.ts')) continue;
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) queue.push(resolve(dirname(file), m[1] as string));
    // Files read at runtime next to a module (e.g. the discovery .proto).
    for (const m of src.matchAll(/new URL\('(\.{1,2}\/[^']+)', import\.meta\.url\)/g)) queue.push(resolve(dirname(file), m[1] as string));
  }
  return seen;
}

const IMAGES = [
  { dockerfile: 'sidecar/Dockerfile', entry: 'sidecar/bin/sluice-proxy.ts' },
  { dockerfile: 'operator/Dockerfile', entry: 'operator/bin/sluice-operator.ts' },
];

describe.each(IMAGES)('$dockerfile', ({ dockerfile, entry }) => {
  const ins = parseDockerfile(readFileSync(join(ROOT, dockerfile), 'utf8'));
  const all = stages(ins);
  const final = all[all.length - 1] as Instruction[];

  it('builds every stage from node:24-slim (one NODE_IMAGE argument, so a digest pins them all), in more than one stage', () => {
    const args = new Map(ins.filter((i) => i.cmd === 'ARG').map((i) => i.args.split('=') as [string, string]));
    const froms = ins.filter((i) => i.cmd === 'FROM').map((i) => i.args.split(/\s+/)[0] as string);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toBe('${NODE_IMAGE}');
    expect(args.get('NODE_IMAGE')).toBe('node:24-slim');
  });

  it('installs production dependencies only, with npm ci, outside the runtime stage', () => {
    const runs = ins.filter((i) => i.cmd === 'RUN').map((i) => i.args);
    expect(runs.some((r) => /\bnpm ci\b/.test(r) && r.includes('--omit=dev'))).toBe(true);
    for (const r of runs) {
      expect(r).not.toMatch(/\bnpm (install|i)\b/);
      expect(r).not.toMatch(/--include=dev|--production=false/);
    }
    expect(final.some((i) => i.cmd === 'RUN' && /\bnpm\b/.test(i.args))).toBe(false);
    expect(final.some((i) => i.cmd === 'COPY' && /--from=\S+\s+\/app\/node_modules/.test(i.args))).toBe(true);
  });

  it('runs as a numeric non-root user', () => {
    const users = final.filter((i) => i.cmd === 'USER').map((i) => i.args.trim());
    expect(users.length).toBeGreaterThan(0);
    const user = users[users.length - 1] as string;
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBe(65532);
  });

  it('starts node on the entry point, exec form, and writes nothing under /app', () => {
    const ep = final.filter((i) => i.cmd === 'ENTRYPOINT').map((i) => JSON.parse(i.args));
    expect(ep).toEqual([['node', entry]]);
    const env = final.filter((i) => i.cmd === 'ENV').map((i) => i.args).join(' ');
    expect(env).toContain('NODE_DISABLE_COMPILE_CACHE=1');
    expect(env).not.toMatch(/NODE_COMPILE_CACHE=/);
    expect(final.some((i) => i.cmd === 'VOLUME')).toBe(false);
  });

  it('copies every file the entry point imports, and nothing wholesale', () => {
    const copies = final.filter((i) => i.cmd === 'COPY' && !i.args.startsWith('--from'));
    const sources = copies.flatMap((c) => c.args.split(/\s+/).slice(0, -1));
    expect(sources).not.toContain('.');
    for (const s of sources) expect(existsSync(join(ROOT, s)), `${s} does not exist`).toBe(true);
    const missing = [...importGraph(join(ROOT, entry))]
      .map((f) => relative(ROOT, f))
      .filter((f) => !sources.some((s) => f === s || f.startsWith(`${s.replace(/\/$/, '')}/`)));
    expect(missing).toEqual([]);
  });
});

describe('.dockerignore', () => {
  it('keeps host node_modules, git data, tests and secrets out of the build context', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    for (const p of ['**/node_modules', '.git', 'test', '**/*.test.ts', '**/*.pem', '**/*.key']) expect(lines).toContain(p);
    // Nothing a Dockerfile copies may be ignored.
    for (const { dockerfile } of IMAGES) {
      const copied = parseDockerfile(readFileSync(join(ROOT, dockerfile), 'utf8')).filter((i) => i.cmd === 'COPY' && !i.args.startsWith('--from'))
        .flatMap((c) => c.args.split(/\s+/).slice(0, -1));
      for (const c of copied) expect(lines, `${c} is ignored but ${dockerfile} copies it`).not.toContain(c);
    }
  });
});
