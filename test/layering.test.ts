/**
 * The operator and the sidecar ship as separate images and change at different speeds, so the only
 * code they share is `lib/`: an import from one component into the other would drag its sources
 * (and their dependencies) into the other's image and couple their releases.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !path.endsWith('.test.ts') ? [path] : [];
  });
}

/** Every relative import of `files`, as `importer -> imported` paths from the repository root. */
function relativeImports(dirs: string[]): Array<{ from: string; to: string }> {
  const found: Array<{ from: string; to: string }> = [];
  for (const dir of dirs) {
    for (const file of sources(join(ROOT, dir))) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:^|\n)\s*(?:import|export)[^'"\n]*?from\s*'(\.[^']*)'|import\(\s*'(\.[^']*)'\s*\)/g)) {
        const spec = (m[1] ?? m[2]) as string;
        found.push({ from: relative(ROOT, file), to: relative(ROOT, resolve(dirname(file), spec)) });
      }
    }
  }
  return found;
}

const crossing = (dirs: string[], forbidden: string[]) =>
  relativeImports(dirs).filter(({ to }) => forbidden.some((f) => to === f || to.startsWith(`${f}/`))).map(({ from, to }) => `${from} -> ${to}`);

/**
 * The import cycles among `files`, each as the files of one strongly connected component (Tarjan).
 * A cycle means two modules are one idea split in two, or one reaches back into its user: either
 * way neither can be read, tested or loaded lazily on its own.
 */
function importCycles(dirs: string[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const { from, to } of relativeImports(dirs)) {
    if (!graph.has(from)) graph.set(from, []);
    graph.get(from)!.push(to);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

const PRODUCT = ['lib', 'operator/src', 'operator/bin', 'sidecar/src', 'sidecar/bin', 'scripts'];

describe('layering', () => {
  it('the operator imports nothing from the sidecar', () => {
    expect(crossing(['operator/src', 'operator/bin'], ['sidecar'])).toEqual([]);
  });

  it('the sidecar imports nothing from the operator', () => {
    expect(crossing(['sidecar/src', 'sidecar/bin'], ['operator'])).toEqual([]);
  });

  it('lib/ imports neither component', () => {
    expect(crossing(['lib'], ['sidecar', 'operator'])).toEqual([]);
  });

  it('product code has no import cycles (type-only imports included)', () => {
    expect(importCycles(PRODUCT)).toEqual([]);
  });

  it('the cycle check finds a cycle where there is one', () => {
    // The check's own fixture: two modules that import each other.
    expect(importCycles(['test/fixtures/import-cycle'])).toEqual([['test/fixtures/import-cycle/a.ts', 'test/fixtures/import-cycle/b.ts']]);
  });

  it('finds imports at all (the check above cannot pass vacuously)', () => {
    const imports = relativeImports(['operator/src']);
    expect(imports.some(({ to }) => to.startsWith('lib/redis/'))).toBe(true);
    expect(imports.length).toBeGreaterThan(50);
  });
});
