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

  it('finds imports at all (the check above cannot pass vacuously)', () => {
    const imports = relativeImports(['operator/src']);
    expect(imports.some(({ to }) => to.startsWith('lib/redis/'))).toBe(true);
    expect(imports.length).toBeGreaterThan(50);
  });
});
