import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCliOptions } from '../../src/cli-options.ts';
import { PodIdentityError, readToken, resolvePodIdentity } from '../../src/discovery/pod-identity.ts';

describe('pod identity (operator mode)', () => {
  it('comes from the downward-API env the injector sets, flags winning', () => {
    const env = { SLUICE_OPERATOR: 'op:15010', SLUICE_POD_NAME: 'web-1', SLUICE_POD_NAMESPACE: 'shop', SLUICE_TOKEN_FILE: '/t/token' };
    const opts = parseCliOptions([], env);
    expect(opts).toMatchObject({ operator: 'op:15010', podName: 'web-1', podNamespace: 'shop', tokenFile: '/t/token' });
    expect(parseCliOptions(['--pod-name', 'web-2'], env)).toMatchObject({ podName: 'web-2' });
  });

  it('reads the token fresh from its file (the kubelet rotates it)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-id-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'first\n');
    const id = resolvePodIdentity({ podName: 'web-1', podNamespace: 'shop', tokenFile: file });
    expect(readToken(id)).toBe('first');
    writeFileSync(file, 'rotated');
    expect(readToken(id)).toBe('rotated');
  });

  it('fails with a stable code when the token is missing', () => {
    const id = resolvePodIdentity({ podName: 'web-1', podNamespace: 'shop', tokenFile: '/nonexistent/token' });
    expect(() => readToken(id)).toThrow(PodIdentityError);
    try {
      readToken(id);
    } catch (err) {
      expect((err as PodIdentityError).code).toBe('SLUICE_ERR_POD_IDENTITY');
    }
  });
});
