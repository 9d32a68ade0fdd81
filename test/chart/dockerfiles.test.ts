/**
 * The operator and sidecar Dockerfiles, checked without a Docker engine: parsed instruction by
 * instruction for the properties the chart relies on (node:24-slim, production dependencies only
 * and only the image's own, a numeric non-root user matching runAsUser 65532, exec-form
 * ENTRYPOINT), and the entry point's whole relative-import graph checked against what the image
 * copies — into the runtime stage, or, for an image that runs built JavaScript, into the stage
 * that builds it, whose output the runtime stage copies. A missing directory would otherwise only
 * show up as a crash-looping pod.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../helpers/import-graph.ts';

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

/**
 * `entry` is what development runs; `runs` what the image's ENTRYPOINT starts. They differ for an
 * image that runs its sources built as JavaScript (`build`: the script that builds them).
 */
const IMAGES = [
  { dockerfile: 'sidecar/Dockerfile', image: 'sidecar', entry: 'sidecar/bin/sluice-proxy.ts', runs: 'sidecar/bin/sluice-proxy.js', build: 'scripts/build-sidecar.ts' },
  { dockerfile: 'operator/Dockerfile', image: 'operator', entry: 'operator/bin/sluice-operator.ts', runs: 'operator/bin/sluice-operator.ts', build: undefined },
];

/** A stage's name (`FROM x AS name`). */
const stageName = (stage: Instruction[]) => /\sAS\s+(\S+)/i.exec(stage[0]?.args ?? '')?.[1];
/** Sources a stage copies from the build context. */
const contextCopies = (stage: Instruction[]) =>
  stage.filter((i) => i.cmd === 'COPY' && !i.args.startsWith('--from')).flatMap((c) => c.args.split(/\s+/).slice(0, -1));
/** `COPY --from=<stage> <path> <dest>` in a stage: [stage, path, dest]. */
const stageCopies = (stage: Instruction[]) =>
  stage.filter((i) => i.cmd === 'COPY' && i.args.startsWith('--from')).map((i) => i.args.replace(/^--from=/, '').split(/\s+/) as [string, string, string]);

describe.each(IMAGES)('$dockerfile', ({ dockerfile, image, entry, runs, build }) => {
  const ins = parseDockerfile(readFileSync(join(ROOT, dockerfile), 'utf8'));
  const all = stages(ins);
  const final = all[all.length - 1] as Instruction[];
  const named = (name: string) => all.find((st) => stageName(st) === name);

  it('builds every stage from node:24-slim (one NODE_IMAGE argument, so a digest pins them all), in more than one stage', () => {
    const args = new Map(ins.filter((i) => i.cmd === 'ARG').map((i) => i.args.split('=') as [string, string]));
    const froms = ins.filter((i) => i.cmd === 'FROM').map((i) => i.args.split(/\s+/)[0] as string);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) expect(f).toBe('${NODE_IMAGE}');
    expect(args.get('NODE_IMAGE')).toBe('node:24-slim');
  });

  it('puts in the runtime stage the production dependencies its own entry point needs, installed with npm ci in another stage', () => {
    for (const r of ins.filter((i) => i.cmd === 'RUN').map((i) => i.args)) {
      expect(r).not.toMatch(/\bnpm (install|i)\b/);
      expect(r).not.toMatch(/--include=dev|--production=false/);
    }
    expect(final.some((i) => i.cmd === 'RUN' && /\bnpm\b/.test(i.args))).toBe(false);
    const modules = stageCopies(final).filter(([, from]) => /^\/app\/node_modules\/?$/.test(from));
    expect(modules).toHaveLength(1);
    const deps = named(modules[0]![0]);
    expect(deps, `stage ${modules[0]![0]}`).toBeDefined();
    const runs = deps!.filter((i) => i.cmd === 'RUN').map((i) => i.args).join(' && ');
    expect(runs).toMatch(/\bnpm ci\b[^&]*--omit=dev/);
    // After npm ci, the image's own packages only (scripts/image-packages.ts, tested in
    // test/production-dependencies.test.ts), by the script the stage copies.
    expect(runs).toMatch(new RegExp(`npm ci\\b.*&& node scripts/image-packages\\.ts ${image}\\b`));
    expect(contextCopies(deps!)).toContain('scripts/image-packages.ts');
    // Nothing else in the runtime stage comes with a node_modules of its own.
    for (const [, from] of stageCopies(final)) if (!modules.some(([, f]) => f === from)) expect(from).not.toMatch(/node_modules/);
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
    expect(ep).toEqual([['node', runs]]);
    const env = final.filter((i) => i.cmd === 'ENV').map((i) => i.args).join(' ');
    expect(env).toContain('NODE_DISABLE_COMPILE_CACHE=1');
    expect(env).not.toMatch(/NODE_COMPILE_CACHE=/);
    // V8 heap flags are per pod (the injector's NODE_OPTIONS), never baked in.
    expect(env).not.toMatch(/NODE_OPTIONS|--max-(old|semi)-space-size/);
    expect(final.some((i) => i.cmd === 'VOLUME')).toBe(false);
  });

  it('copies every file the entry point imports, and nothing wholesale', () => {
    // Where the sources go: the runtime stage, or the stage that builds them.
    let sourceStage = final;
    if (build) {
      // The runtime stage takes the built tree whole from a build stage that runs the build script
      // into that same directory, and runs the .js the build makes of the entry point.
      const fromBuild = stageCopies(final).filter(([, from]) => !/node_modules/.test(from));
      expect(fromBuild).toHaveLength(1);
      const [stage, out, dest] = fromBuild[0]!;
      expect(dest).toMatch(/^\.\/?$/);
      const builder = named(stage);
      expect(builder, `stage ${stage}`).toBeDefined();
      const buildRuns = builder!.filter((i) => i.cmd === 'RUN').map((i) => i.args);
      expect(buildRuns).toContainEqual(`node ${build} ${out.replace(/\/$/, '')}`);
      expect(runs).toBe(entry.replace(/\.ts$/, '.js'));
      sourceStage = builder!;
    } else {
      expect(stageCopies(final).every(([, from]) => /node_modules/.test(from))).toBe(true);
    }
    const sources = contextCopies(sourceStage);
    expect(sources).not.toContain('.');
    for (const s of sources) expect(existsSync(join(ROOT, s)), `${s} does not exist`).toBe(true);
    const needed = [...importGraph(join(ROOT, entry)).files].map((f) => relative(ROOT, f));
    // The build reads its script, its tsconfig and the one it extends.
    if (build) needed.push(build, 'tsconfig.sidecar-build.json', 'tsconfig.json');
    const missing = needed.filter((f) => !sources.some((s) => f === s || f.startsWith(`${s.replace(/\/$/, '')}/`)));
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
