/**
 * Relative links in Markdown files, checked against the repository: the target must be a file
 * or folder inside the repository root, and a `#fragment` into a Markdown file must name one of
 * its headings (GitHub's anchors). Links with a scheme (https:, mailto:) are not followed.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, relative, resolve, sep } from 'node:path';
import { anchor } from '../../scripts/api-reference.ts';

export interface BrokenLink {
  file: string;
  line: number;
  target: string;
  why: string;
}

/** Markdown with fenced code blocks blanked out, and inline code too unless kept (line numbers kept). */
function prose(text: string, { keepInlineCode = false } = {}): string {
  let fence: string | undefined;
  return text.split('\n').map((line) => {
    const m = /^\s*(```+|~~~+)/.exec(line);
    if (m) {
      if (!fence) fence = m[1]![0]!.repeat(m[1]!.length);
      else if (m[1]!.startsWith(fence)) fence = undefined;
      return '';
    }
    if (fence) return '';
    if (keepInlineCode) return line;
    return line.replace(/(`+)[\s\S]*?\1/g, (s) => ' '.repeat(s.length));
  }).join('\n');
}

/** Every link target with its line: inline `[text](target)`, images, and reference definitions. */
export function linkTargets(text: string): { line: number; target: string }[] {
  const out: { line: number; target: string }[] = [];
  prose(text).split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push({ line: i + 1, target: m[1]! });
    const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$/.exec(line);
    if (def) out.push({ line: i + 1, target: def[1]! });
  });
  return out;
}

/** The anchors GitHub gives a Markdown file's headings (duplicates get -1, -2, …). */
export function headingAnchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const line of prose(text, { keepInlineCode: true }).split('\n')) {
    const m = /^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const plain = m[1]!.replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/<[^>]+>/g, '');
    const base = anchor(plain);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

export function brokenLinks(files: readonly string[], root: string): BrokenLink[] {
  const broken: BrokenLink[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const { line, target } of linkTargets(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
      const report = (why: string) => broken.push({ file: relative(root, file), line, target, why });
      const hash = target.indexOf('#');
      const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
      const fragment = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
      if (pathPart.startsWith('/')) {
        report('absolute paths do not resolve in a clone; link relative to the file');
        continue;
      }
      const resolved = pathPart === '' ? file : resolve(dirname(file), pathPart);
      if (resolved !== root && !resolved.startsWith(root + sep)) {
        report('points outside the repository');
        continue;
      }
      if (!existsSync(resolved)) {
        report('no such file or folder');
        continue;
      }
      if (fragment !== undefined && resolved.endsWith('.md') && statSync(resolved).isFile()) {
        if (!headingAnchors(readFileSync(resolved, 'utf8')).has(fragment)) report(`no heading with anchor #${fragment}`);
      }
    }
  }
  return broken;
}
