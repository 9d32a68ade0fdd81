import { describe, expect, it } from 'vitest';
import { CelCompileError, CelEvalError, compileCel, parseGoDuration } from './cel.ts';

const run = (rule: string, self: unknown, oldSelf?: unknown) => compileCel(rule).eval({ self, oldSelf });

describe('CEL subset', () => {
  it.each([
    ['self.a == 1 && self.b == "x"', { a: 1, b: 'x' }, true],
    ["has(self.a) && !has(self.c)", { a: 1 }, true],
    ['self.a > 2 ? "big" : "small"', { a: 3 }, 'big'],
    ['size(self.list) == 3 && self.list.size() == 3', { list: [1, 2, 3] }, true],
    ['self.list.all(x, x > 0)', { list: [1, 2] }, true],
    ['self.list.exists(x, x == 2)', { list: [1, 2] }, true],
    ['self.list.exists_one(x, x == 2)', { list: [2, 2] }, false],
    ['self.all(r, self.exists_one(x, x.name == r.name))', [{ name: 'a' }, { name: 'b' }], true],
    ['self.all(r, self.exists_one(x, x.name == r.name))', [{ name: 'a' }, { name: 'a' }], false],
    ["self.op in ['In', 'NotIn']", { op: 'NotIn' }, true],
    ["'k' in self", { k: 1 }, true],
    ["duration(self.a) < duration(self.b)", { a: '500ms', b: '1s' }, true],
    ["duration(self.a) < duration(self.b)", { a: '1m30s', b: '90s' }, false],
    ["duration('1h') == duration('60m')", {}, true],
    ['self.s.startsWith("/") && self.s.endsWith("z") && self.s.contains("y")', { s: '/xyz' }, true],
    ["self.s.matches('^[a-z]+$')", { s: 'abc' }, true],
    ['self.list.map(x, x * 2) == [2, 4]', { list: [1, 2] }, true],
    ['self.list.filter(x, x > 1).size()', { list: [1, 2, 3] }, 2],
    ['7 / 2 == 3 && 7 % 2 == 1 && -self.n == -1', { n: 1 }, true],
    ['self.m["a.b"] == true', { m: { 'a.b': true } }, true],
    ['self == oldSelf', { a: 1 }, true],
    ['r"a\\b" == "a\\\\b"', {}, true],
  ])('%s', (rule, self, expected) => {
    expect(run(rule, self, rule.includes('oldSelf') ? self : undefined)).toEqual(expected);
  });

  it('absorbs errors like CEL: false && error is false, true || error is true', () => {
    expect(run('has(self.a) && self.a.b == 1', {})).toBe(false);
    expect(run('self.missing == 1 || true', {})).toBe(true);
    expect(() => run('self.missing == 1', {})).toThrow(CelEvalError);
    expect(() => run("duration('soon') > duration('1s')", {})).toThrow(/invalid duration/);
  });

  it('refuses what it cannot compile', () => {
    expect(() => compileCel('self.a ==')).toThrow(CelCompileError);
    expect(() => compileCel('unknownVar > 1')).toThrow(/undeclared reference to 'unknownVar'/);
    expect(() => compileCel('self.a.frobnicate()')).toThrow(/undeclared reference to 'frobnicate'/);
    expect(() => compileCel('self.list.all(1, true)')).toThrow(CelCompileError);
  });

  it('parses Go durations', () => {
    expect(parseGoDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('10')).toBeUndefined();
  });
});
