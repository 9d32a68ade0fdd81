import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../../scripts/api-reference.ts';
import { brokenLinks, headingAnchors, linkTargets } from './markdown-links.ts';

const root = ROOT.replace(/\/$/, '');

/** The user-facing Markdown: README, docs/, and the READMEs of the chart, the operator and the examples. */
function userDocs(): string[] {
  const files = [join(root, 'README.md')];
  files.push(...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(root, 'docs', f)));
  for (const p of ['charts/sluice/README.md', 'operator/README.md', 'bench/README.md', 'test/kind/README.md']) files.push(join(root, p));
  const examples = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? examples(join(dir, e.name)) : e.name === 'README.md' ? [join(dir, e.name)] : []);
  files.push(...examples(join(root, 'examples')));
  return files;
}

const tmp = mkdtempSync(join(tmpdir(), 'sluice-links-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('links in the documentation', () => {
  it('every relative link in README.md, docs/ and the component READMEs resolves inside the repository', () => {
    const files = userDocs();
    expect(files.length).toBeGreaterThan(8);
    expect(brokenLinks(files, root)).toEqual([]);
  });

  it('finds the links it checks, and the anchors GitHub makes of headings', () => {
    expect(linkTargets('see [a](docs/x.md#y), ![i](img.png "t") and `[no](code.md)`\n```\n[nor](fenced.md)\n```\n[ref]: ../z.md'))
      .toEqual([{ line: 1, target: 'docs/x.md#y' }, { line: 1, target: 'img.png' }, { line: 5, target: '../z.md' }]);
    expect([...headingAnchors('# API reference\n## `spec.rules[]` — what it means\n## Rate limits\n## Rate limits\n```\n# not a heading\n```')])
      .toEqual(['api-reference', 'specrules--what-it-means', 'rate-limits', 'rate-limits-1']);
  });

  it('fails on a missing file, a link out of the repository, an absolute path and a missing anchor', () => {
    mkdirSync(join(tmp, 'docs'), { recursive: true });
    writeFileSync(join(tmp, 'docs', 'target.md'), '# Target\n## Real section\n');
    const bad = join(tmp, 'docs', 'bad.md');
    writeFileSync(bad, [
      '# Bad',
      '[fine](target.md#real-section) [self](#bad) [site](https://example.com/x)',
      '[gone](missing.md)',
      '[outside](../../etc/passwd)',
      '[absolute](/docs/target.md)',
      '[anchor](target.md#no-such-section)',
    ].join('\n'));
    expect(brokenLinks([bad], tmp)).toEqual([
      { file: 'docs/bad.md', line: 3, target: 'missing.md', why: 'no such file or folder' },
      { file: 'docs/bad.md', line: 4, target: '../../etc/passwd', why: 'points outside the repository' },
      { file: 'docs/bad.md', line: 5, target: '/docs/target.md', why: 'absolute paths do not resolve in a clone; link relative to the file' },
      { file: 'docs/bad.md', line: 6, target: 'target.md#no-such-section', why: 'no heading with anchor #no-such-section' },
    ]);
  });
});
