import { describe, expect, it } from 'vitest';
import { ApiError } from './errors.ts';
import { jsonPatch, mergePatch, strategicMergePatch } from './patch.ts';
import { labelSelectorRequirements, matchesLabels, parseFieldSelector, parseLabelSelector } from './selectors.ts';

describe('strategic merge patch', () => {
  const pod = {
    metadata: { finalizers: ['a'], labels: { x: '1' } },
    spec: {
      containers: [
        { name: 'app', image: 'app:1', ports: [{ containerPort: 80, name: 'http' }], env: [{ name: 'A', value: '1' }], volumeMounts: [{ mountPath: '/data', name: 'd' }] },
        { name: 'side', image: 'side:1' },
      ],
      volumes: [{ name: 'd', emptyDir: {} }],
    },
    status: { conditions: [{ type: 'Ready', status: 'False' }, { type: 'Initialized', status: 'True' }] },
  };

  it('merges keyed lists and deletes with $patch', () => {
    const out = strategicMergePatch(pod, {
      metadata: { finalizers: ['b'], labels: { x: null, y: '2' } },
      spec: {
        '$setElementOrder/containers': [{ name: 'app' }],
        containers: [
          { name: 'app', image: 'app:2', ports: [{ containerPort: 81 }], volumeMounts: [{ mountPath: '/data', readOnly: true }] },
          { name: 'side', $patch: 'delete' },
        ],
      },
      status: { conditions: [{ type: 'Ready', status: 'True' }] },
    }) as any;
    expect(out.metadata).toEqual({ finalizers: ['a', 'b'], labels: { y: '2' } });
    expect(out.spec.containers).toEqual([{
      name: 'app', image: 'app:2', ports: [{ containerPort: 80, name: 'http' }, { containerPort: 81 }],
      env: [{ name: 'A', value: '1' }], volumeMounts: [{ mountPath: '/data', name: 'd', readOnly: true }],
    }]);
    expect(out.status.conditions).toEqual([{ type: 'Ready', status: 'True' }, { type: 'Initialized', status: 'True' }]);
  });

  it('honours $patch: replace, $retainKeys and $deleteFromPrimitiveList', () => {
    const out = strategicMergePatch({ spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } }, args: ['a', 'b'], finalizers: ['x', 'y'] } }, {
      spec: {
        strategy: { $retainKeys: ['type'], type: 'Recreate' },
        args: ['c'],
        '$deleteFromPrimitiveList/finalizers': ['x'],
      },
    });
    expect(out).toEqual({ spec: { strategy: { type: 'Recreate' }, args: ['c'], finalizers: ['y'] } });
    expect(strategicMergePatch({ spec: { volumes: [{ name: 'a' }, { name: 'b' }] } }, { spec: { volumes: [{ name: 'c' }, { $patch: 'replace' }] } }))
      .toEqual({ spec: { volumes: [{ name: 'c' }] } });
    expect(strategicMergePatch({ a: { b: 1, c: 2 } }, { a: { $patch: 'replace', d: 3 } })).toEqual({ a: { d: 3 } });
  });

  it('keys service ports by port and container ports by containerPort', () => {
    const svc = strategicMergePatch({ spec: { ports: [{ port: 80, targetPort: 8080 }] } }, { spec: { ports: [{ port: 80, name: 'http' }, { port: 443 }] } });
    expect(svc).toEqual({ spec: { ports: [{ port: 80, targetPort: 8080, name: 'http' }, { port: 443 }] } });
  });
});

describe('JSON and merge patch', () => {
  it('applies RFC 6902 operations and fails tests and missing paths', () => {
    const doc = { a: { b: [1, 2] }, c: 'x' };
    expect(jsonPatch(doc, [
      { op: 'add', path: '/a/b/-', value: 3 }, { op: 'remove', path: '/c' }, { op: 'copy', from: '/a/b', path: '/d' },
      { op: 'move', from: '/d', path: '/e' }, { op: 'replace', path: '/a/b/0', value: 0 }, { op: 'test', path: '/e/2', value: 3 },
      { op: 'add', path: '/k~1v', value: true },
    ])).toEqual({ a: { b: [0, 2, 3] }, e: [1, 2, 3], 'k/v': true });
    expect(() => jsonPatch(doc, [{ op: 'test', path: '/c', value: 'y' }])).toThrow(ApiError);
    expect(() => jsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }])).toThrow(ApiError);
    expect(doc).toEqual({ a: { b: [1, 2] }, c: 'x' });
  });

  it('applies RFC 7386 merge patches', () => {
    expect(mergePatch({ a: 1, b: { c: 2, d: 3 }, l: [1] }, { a: null, b: { c: null, e: 4 }, l: [2] })).toEqual({ b: { d: 3, e: 4 }, l: [2] });
  });
});

describe('selectors', () => {
  it('parses every label selector operator', () => {
    expect(parseLabelSelector('a=1,b==2,c!=3,d in (x, y),e notin (z),f,!g')).toEqual([
      { key: 'a', op: 'in', values: ['1'] }, { key: 'b', op: 'in', values: ['2'] }, { key: 'c', op: 'notin', values: ['3'] },
      { key: 'd', op: 'in', values: ['x', 'y'] }, { key: 'e', op: 'notin', values: ['z'] }, { key: 'f', op: 'exists' }, { key: 'g', op: '!exists' },
    ]);
    expect(() => parseLabelSelector('a in x')).toThrow(ApiError);
  });

  it('matches metav1.LabelSelector objects', () => {
    const reqs = labelSelectorRequirements({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['db'] }, { key: 'canary', operator: 'DoesNotExist' }] }) ?? [];
    expect(matchesLabels(reqs, { app: 'web', tier: 'front' })).toBe(true);
    expect(matchesLabels(reqs, { app: 'web', tier: 'db' })).toBe(false);
    expect(matchesLabels(reqs, { app: 'web', canary: 'true' })).toBe(false);
    expect(matchesLabels(labelSelectorRequirements({}) ?? [], {})).toBe(true);
  });

  it('parses field selectors', () => {
    expect(parseFieldSelector('metadata.name=a,status.phase!=Running')).toEqual([
      { path: 'metadata.name', negate: false, value: 'a' }, { path: 'status.phase', negate: true, value: 'Running' },
    ]);
  });
});
