/**
 * What an entry point loads at run time, read from the sources: every repository file reachable
 * through relative imports (static, `import()`, files read beside a module with
 * `new URL('./x', import.meta.url)`), and every package it names (bare imports, `import()`,
 * `require()`). Type-only imports (`import type`, `export type`) are erased before Node runs the
 * code, so they load nothing and are left out; `import { type X }` is kept, as it still loads its
 * module. Works on the .ts sources and on the built .js alike.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export interface ImportGraph {
  /** Absolute paths of the repository files the entry loads or reads, the entry included. */
  files: Set<string>;
  /** Package name → one file that imports it. */
  packages: Map<string, string>;
}

/** The package a bare specifier names: `ws`, `@grpc/grpc-js` (from `@grpc/grpc-js/build/x`). */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

/** The module specifiers one source file loads at run time (relative and bare, not `node:`). */
export function runtimeSpecifiers(src: string): { relative: string[]; bare: string[]; readBeside: string[] } {
  const specs: string[] = [];
  // Static imports and re-exports, not type-only ones.
  for (const m of src.matchAll(/(?:^|\n|;)\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?'([^']+)'/g)) if (!m[2]) specs.push(m[3] as string);
  for (const m of src.matchAll(/\b(?:import|require)\(\s*'([^']+)'\s*\)/g)) specs.push(m[1] as string);
  const readBeside = [...src.matchAll(/new URL\('(\.{1,2}\/[^']+)', import\.meta\.url\)/g)].map((m) => m[1] as string);
  const wanted = specs.filter((s) => !s.startsWith('node:'));
  return { relative: wanted.filter((s) => s.startsWith('.')), bare: wanted.filter((s) => !s.startsWith('.')), readBeside };
}

export function importGraph(entry: string): ImportGraph {
  const files = new Set<string>();
  const packages = new Map<string, string>();
  const queue = [resolve(entry)];
  while (queue.length) {
    const file = queue.pop() as string;
    if (files.has(file)) continue;
    files.add(file);
    if (!/\.[cm]?[jt]s$/.test(file)) continue;
    const { relative, bare, readBeside } = runtimeSpecifiers(readFileSync(file, 'utf8'));
    for (const s of [...relative, ...readBeside]) queue.push(resolve(dirname(file), s));
    for (const s of bare) if (!packages.has(packageOf(s))) packages.set(packageOf(s), file);
  }
  return { files, packages };
}
