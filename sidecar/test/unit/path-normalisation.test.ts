import { describe, expect, it } from 'vitest';
import { normaliseTarget, type EscapedSlashAction } from '../../src/http/path-normalisation.ts';

describe('normaliseTarget', () => {
  const cases: [target: string, action: EscapedSlashAction, expected: { path: string; query: string } | { error: string }][] = [
    ['/api/x', 'reject', { path: '/api/x', query: '' }],
    ['/api/x?a=1&b=%2F', 'reject', { path: '/api/x', query: '?a=1&b=%2F' }],
    ['/', 'reject', { path: '/', query: '' }],
    ['/./api/x', 'reject', { path: '/api/x', query: '' }],
    ['/x/../api/x', 'reject', { path: '/api/x', query: '' }],
    ['/../../api/x', 'reject', { path: '/api/x', query: '' }],
    ['//api/x', 'reject', { path: '/api/x', query: '' }],
    ['/api///x//', 'reject', { path: '/api/x/', query: '' }],
    ['/%61pi/x', 'reject', { path: '/api/x', query: '' }],
    ['/%2e%2E/api/%78', 'reject', { path: '/api/x', query: '' }],
    ['/api/x/.', 'reject', { path: '/api/x/', query: '' }],
    ['/api/x/..', 'reject', { path: '/api/', query: '' }],
    ['/.well-known/acme', 'reject', { path: '/.well-known/acme', query: '' }],
    ['/a%20b/%c3%a9', 'reject', { path: '/a%20b/%C3%A9', query: '' }],
    ['http://host/api/x', 'reject', { path: '/api/x', query: '' }],
    ['HTTPS://host:8443/./api/x?q', 'reject', { path: '/api/x', query: '?q' }],
    ['http://host', 'reject', { path: '/', query: '' }],
    ['http://host?x=1', 'reject', { path: '/', query: '?x=1' }],
    ['*', 'reject', { error: 'SLUICE_ERR_REQUEST_TARGET' }],
    ['host:443', 'reject', { error: 'SLUICE_ERR_REQUEST_TARGET' }],
    ['/a%zz', 'reject', { error: 'SLUICE_ERR_PATH_ENCODING' }],
    ['/a%2', 'reject', { error: 'SLUICE_ERR_PATH_ENCODING' }],
    ['/api%2Fx', 'reject', { error: 'SLUICE_ERR_PATH_ESCAPED_SLASH' }],
    ['/api%5cx', 'reject', { error: 'SLUICE_ERR_PATH_ESCAPED_SLASH' }],
    ['/api\\x', 'reject', { error: 'SLUICE_ERR_PATH_ESCAPED_SLASH' }],
    ['/api%2Fx', 'unescape', { path: '/api/x', query: '' }],
    ['/x%2f..%2fapi%2Fx', 'unescape', { path: '/api/x', query: '' }],
    ['/api%5Cx', 'unescape', { path: '/api/x', query: '' }],
    ['/api\\..\\admin', 'unescape', { path: '/admin', query: '' }],
    ['/repos/a%2fb/issues', 'keep', { path: '/repos/a%2Fb/issues', query: '' }],
    ['/x%2F..%2Fapi', 'keep', { path: '/x%2F..%2Fapi', query: '' }],
    ['/a\\b', 'keep', { path: '/a\\b', query: '' }],
  ];
  it.each(cases)('%s (%s)', (target, action, expected) => {
    expect(normaliseTarget(target, action)).toEqual(expected);
  });

  it('is idempotent: a normalised path normalises to itself', () => {
    for (const [target, action] of cases) {
      const once = normaliseTarget(target, action);
      if ('error' in once) continue;
      expect(normaliseTarget(once.path + once.query, action)).toEqual(once);
    }
  });
});
