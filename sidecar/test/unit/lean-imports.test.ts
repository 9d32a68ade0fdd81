/**
 * What every sidecar loads at start-up is paid for in every pod. Three modules are loaded through
 * narrow doors instead of their front ones:
 *  - node:http through sidecar/src/http/node-http.ts (require): an ESM import builds node:http's
 *    ESM facade, which reads its lazy WebSocket exports and so loads Node's bundled undici (≈12 MiB);
 *  - undici through sidecar/src/http/undici-pool.ts: the Pool only, without node:http2 (≈8 MiB);
 *  - prom-client through sidecar/src/prom-client.ts: without the Pushgateway's https/TLS/zlib and
 *    the cluster aggregator (≈8 MiB).
 * Checked two ways: no runtime import of the front doors in the sidecar's import graph (type-only
 * imports are erased and fine), and a real process that loads the request path and the metrics
 * has none of those Node modules loaded.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { importGraph } from '../../../test/helpers/import-graph.ts';

const ROOT = resolve(import.meta.dirname, '../../..');
const DOORS: Record<string, string> = {
  'node:http': 'sidecar/src/http/node-http.ts',
  undici: 'sidecar/src/http/undici-pool.ts',
  'prom-client': 'sidecar/src/prom-client.ts',
};

describe('what the sidecar loads at start-up', () => {
  it('imports node:http, undici and prom-client at run time only through their narrow doors', () => {
    const offenders: string[] = [];
    for (const file of importGraph(resolve(ROOT, 'sidecar/bin/sluice-proxy.ts')).files) {
      if (!file.endsWith('.ts')) continue;
      const src = readFileSync(file, 'utf8');
      for (const [spec, door] of Object.entries(DOORS)) {
        if (relative(ROOT, file) === door) continue;
        const quoted = `'${spec.replace(/[/.]/g, '\\$&')}'`;
        for (const m of src.matchAll(new RegExp(`(?:^|\\n)\\s*(import|export)\\s+(type\\s+)?[^;]*?from\\s+${quoted}`, 'g'))) {
          if (!m[2]) offenders.push(`${relative(ROOT, file)} imports ${spec} (use ${door})`);
        }
        // import('x') loads it; import('x').Name is a type.
        if (new RegExp(`(?<!typeof )import\\(\\s*${quoted}\\s*\\)(?!\\.)`).test(src)) offenders.push(`${relative(ROOT, file)} imports ${spec} (use ${door})`);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('leaves Node\'s bundled undici, http2, https, zlib and cluster unloaded by the request path, the admin server, the metrics and the outbound feature', () => {
    const modules = ['sidecar/src/http/http-listener.ts', 'sidecar/src/admin/admin-server.ts', 'sidecar/src/metrics.ts', 'sidecar/src/outbound/outbound-feature.ts'];
    const script = `
      ${modules.map((m) => `await import(${JSON.stringify(resolve(ROOT, m))});`).join('\n')}
      console.log(JSON.stringify(process.moduleLoadList.filter((m) => /^NativeModule (internal\\/deps\\/undici|http2|https|zlib|cluster)\\b/.test(m))));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out.trim().split('\n').at(-1) as string)).toEqual([]);
  });
});
