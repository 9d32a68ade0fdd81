import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { CRD_DIR, OUTPUT, renderApiReference } from '../../scripts/api-reference.ts';

const tmp = mkdtempSync(join(tmpdir(), 'sluice-api-ref-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Every x-kubernetes-validations message in a schema tree. */
function messages(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) messages(n, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'x-kubernetes-validations') for (const r of v as { message: string }[]) out.push(r.message);
      else messages(v, out);
    }
  }
  return out;
}

describe('docs/api-reference.md', () => {
  it('is what the generator makes of the CRDs in crds/', () => {
    const committed = readFileSync(OUTPUT, 'utf8');
    const generated = renderApiReference();
    // A field added to a CRD without regenerating the reference lands here.
    expect(committed === generated, 'docs/api-reference.md is out of date with crds/: run `npm run docs:api` and commit the result').toBe(true);
  });

  it('lists every kind, every CEL rule message, and fields with their defaults', () => {
    const text = renderApiReference();
    for (const f of readdirSync(CRD_DIR).filter((x) => x.endsWith('.yaml'))) {
      const crd = parse(readFileSync(join(CRD_DIR, f), 'utf8'));
      expect(text).toContain(`## ${crd.spec.names.kind}\n`);
      for (const m of messages(crd)) expect(text).toContain(m.replace(/\s*\n\s*/g, ' '));
    }
    expect(text).toMatch(/\| `spec\.retention\.maxLen` \| integer \(int64\) \| {2}\| ≥ 1 \|/);
    expect(text).toMatch(/\| `spec\.mode` \| string \| `"Enforce"` \| one of `Enforce`, `DryRun` \|/);
  });

  it('changes when a CRD does (so the first test can fail)', () => {
    cpSync(CRD_DIR, tmp, { recursive: true });
    const file = join(tmp, 'taskqueues.sluice.dev.yaml');
    // The first `maxLen:` of the file is spec.deadLetter.maxLen.
    writeFileSync(file, readFileSync(file, 'utf8').replace('maxLen:\n', 'maxLength:\n'));
    const changed = renderApiReference(tmp);
    expect(changed).not.toBe(renderApiReference());
    expect(changed).toContain('`spec.deadLetter.maxLength`');
  });
});
