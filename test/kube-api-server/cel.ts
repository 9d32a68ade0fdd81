/**
 * A small Common Expression Language evaluator: the subset CRD `x-kubernetes-validations` rules in
 * this repository use, and a little more. It exists so the test API server refuses the same
 * objects the real one does. A rule outside the subset fails to *compile* (CelCompileError), and
 * the server then refuses the CRD — it never silently skips a rule.
 *
 * Supported: literals (int, double, string incl. raw/triple-quoted, bool, null, lists, maps),
 * `self`/`oldSelf` and macro variables, field selection, indexing, `has()`, `! - * / % + -`,
 * comparisons, `in`, `&&`/`||` with CEL's error-absorbing semantics, `?:`, macros
 * `all/exists/exists_one/map/filter`, and functions `size`, `duration`, `timestamp`, `int`,
 * `uint`, `double`, `string`, `type`, `matches`, `startsWith`, `endsWith`, `contains`,
 * `lowerAscii`, `upperAscii`, `trim`, `split`, `join`, `indexOf`, `isSorted`, `sum`, `min`, `max`.
 */

export class CelCompileError extends Error {}
export class CelEvalError extends Error {}

type Node =
  | { k: 'lit'; v: unknown }
  | { k: 'id'; name: string }
  | { k: 'sel'; obj: Node; field: string }
  | { k: 'has'; obj: Node; field: string }
  | { k: 'idx'; obj: Node; index: Node }
  | { k: 'call'; fn: string; target: Node | undefined; args: Node[] }
  | { k: 'macro'; name: string; target: Node; v: string; args: Node[] }
  | { k: 'un'; op: string; e: Node }
  | { k: 'bin'; op: string; l: Node; r: Node }
  | { k: 'and' | 'or'; l: Node; r: Node }
  | { k: 'cond'; c: Node; t: Node; f: Node }
  | { k: 'list'; items: Node[] }
  | { k: 'map'; entries: [Node, Node][] };

/** A CEL duration value; compared and added by its length. */
export class CelDuration {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
}

export class CelTimestamp {
  readonly ms: number;
  constructor(ms: number) {
    this.ms = ms;
  }
}

/** Integers stay JS numbers; a literal or conversion result marked double keeps `/` from truncating. */
class CelDouble {
  readonly v: number;
  constructor(v: number) {
    this.v = v;
  }
}

interface Token {
  t: 'num' | 'str' | 'id' | 'op' | 'eof';
  v: string;
  pos: number;
  double?: boolean;
}

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '?', ':', '.', ',', '(', ')', '[', ']', '{', '}', '+', '-', '*', '/', '%'];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) { i++; continue; }
    const start = i;
    if (/[0-9]/.test(c)) {
      const m = /^(0x[0-9a-fA-F]+|[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?)u?/.exec(src.slice(i));
      const text = (m as RegExpExecArray)[0];
      out.push({ t: 'num', v: text.replace(/u$/, ''), pos: start, double: /[.eE]/.test(text) && !text.startsWith('0x') });
      i += text.length;
      continue;
    }
    let raw = false;
    if ((c === 'r' || c === 'R') && (src[i + 1] === '"' || src[i + 1] === "'")) { raw = true; i++; }
    const q = src[i] as string;
    if (q === '"' || q === "'") {
      const triple = src.startsWith(q.repeat(3), i);
      const close = triple ? q.repeat(3) : q;
      i += close.length;
      let s = '';
      for (;;) {
        if (i >= src.length) throw new CelCompileError(`unterminated string at ${start}`);
        if (src.startsWith(close, i)) { i += close.length; break; }
        const ch = src[i] as string;
        if (ch === '\\' && !raw) {
          const e = src[i + 1] as string;
          const map: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', "'": "'", '"': '"', '`': '`', '?': '?', a: '\x07', b: '\b', f: '\f', v: '\v' };
          if (e in map) { s += map[e]; i += 2; continue; }
          if (e === 'u') { s += String.fromCharCode(parseInt(src.slice(i + 2, i + 6), 16)); i += 6; continue; }
          throw new CelCompileError(`unsupported escape \\${e} at ${i}`);
        }
        if (!triple && ch === '\n') throw new CelCompileError(`newline in string at ${i}`);
        s += ch;
        i++;
      }
      out.push({ t: 'str', v: s, pos: start });
      continue;
    }
    if (raw) i--;
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: 'id', v: m[0], pos: start });
      i += m[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new CelCompileError(`Syntax error: token recognition error at: '${c}' (position ${i})`);
    out.push({ t: 'op', v: op, pos: start });
    i += op.length;
  }
  out.push({ t: 'eof', v: '', pos: src.length });
  return out;
}

const MACROS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
const FUNCTIONS = new Set([
  'size', 'duration', 'timestamp', 'int', 'uint', 'double', 'string', 'type', 'matches', 'startsWith', 'endsWith',
  'contains', 'lowerAscii', 'upperAscii', 'trim', 'split', 'join', 'indexOf', 'isSorted', 'sum', 'min', 'max',
  'getSeconds', 'getMilliseconds',
]);

class Parser {
  private readonly toks: Token[];
  private p = 0;
  constructor(src: string) {
    this.toks = tokenize(src);
  }

  parse(): Node {
    const n = this.expr();
    if (this.peek().t !== 'eof') this.fail(`unexpected '${this.peek().v}'`);
    return n;
  }

  private peek(): Token { return this.toks[this.p] as Token; }
  private next(): Token { return this.toks[this.p++] as Token; }
  private isOp(v: string): boolean { const t = this.peek(); return t.t === 'op' && t.v === v; }
  private eat(v: string): void {
    if (!this.isOp(v)) this.fail(`expected '${v}' but found '${this.peek().v || 'end of expression'}'`);
    this.p++;
  }
  private fail(msg: string): never {
    throw new CelCompileError(`Syntax error: ${msg} (position ${this.peek().pos})`);
  }

  private expr(): Node {
    const c = this.or();
    if (!this.isOp('?')) return c;
    this.p++;
    const t = this.or();
    this.eat(':');
    return { k: 'cond', c, t, f: this.expr() };
  }
  private or(): Node {
    let l = this.and();
    while (this.isOp('||')) { this.p++; l = { k: 'or', l, r: this.and() }; }
    return l;
  }
  private and(): Node {
    let l = this.rel();
    while (this.isOp('&&')) { this.p++; l = { k: 'and', l, r: this.rel() }; }
    return l;
  }
  private rel(): Node {
    let l = this.add();
    for (;;) {
      const t = this.peek();
      if (t.t === 'op' && ['==', '!=', '<', '<=', '>', '>='].includes(t.v)) { this.p++; l = { k: 'bin', op: t.v, l, r: this.add() }; continue; }
      if (t.t === 'id' && t.v === 'in') { this.p++; l = { k: 'bin', op: 'in', l, r: this.add() }; continue; }
      return l;
    }
  }
  private add(): Node {
    let l = this.mul();
    while (this.isOp('+') || this.isOp('-')) { const op = this.next().v; l = { k: 'bin', op, l, r: this.mul() }; }
    return l;
  }
  private mul(): Node {
    let l = this.unary();
    while (this.isOp('*') || this.isOp('/') || this.isOp('%')) { const op = this.next().v; l = { k: 'bin', op, l, r: this.unary() }; }
    return l;
  }
  private unary(): Node {
    if (this.isOp('!')) { this.p++; return { k: 'un', op: '!', e: this.unary() }; }
    if (this.isOp('-')) {
      this.p++;
      const t = this.peek();
      if (t.t === 'num') { this.p++; return this.member(numberLiteral(t, true)); }
      return { k: 'un', op: '-', e: this.unary() };
    }
    return this.member(this.primary());
  }
  private member(n: Node): Node {
    for (;;) {
      if (this.isOp('.')) {
        this.p++;
        const id = this.next();
        if (id.t !== 'id') this.fail('expected a field or method name after "."');
        if (this.isOp('(')) {
          this.p++;
          const args = this.args(')');
          if (MACROS.has(id.v)) {
            const v = args[0];
            if (!v || v.k !== 'id') this.fail(`${id.v}() needs a variable name as its first argument`);
            const expected = id.v === 'map' ? [2, 3] : [2];
            if (!expected.includes(args.length)) this.fail(`${id.v}() takes ${expected.join(' or ')} arguments`);
            n = { k: 'macro', name: id.v, target: n, v: v.name, args: args.slice(1) };
          } else {
            if (!FUNCTIONS.has(id.v)) throw new CelCompileError(`undeclared reference to '${id.v}' (in container '')`);
            n = { k: 'call', fn: id.v, target: n, args };
          }
        } else {
          n = { k: 'sel', obj: n, field: id.v };
        }
        continue;
      }
      if (this.isOp('[')) {
        this.p++;
        const index = this.expr();
        this.eat(']');
        n = { k: 'idx', obj: n, index };
        continue;
      }
      return n;
    }
  }
  private args(close: string): Node[] {
    const out: Node[] = [];
    if (this.isOp(close)) { this.p++; return out; }
    for (;;) {
      out.push(this.expr());
      if (this.isOp(',')) { this.p++; if (this.isOp(close)) { this.p++; return out; } continue; }
      this.eat(close);
      return out;
    }
  }
  private primary(): Node {
    const t = this.next();
    if (t.t === 'num') return numberLiteral(t, false);
    if (t.t === 'str') return { k: 'lit', v: t.v };
    if (t.t === 'id') {
      if (t.v === 'true') return { k: 'lit', v: true };
      if (t.v === 'false') return { k: 'lit', v: false };
      if (t.v === 'null') return { k: 'lit', v: null };
      if (this.isOp('(')) {
        this.p++;
        const args = this.args(')');
        if (t.v === 'has') {
          const a = args[0];
          if (args.length !== 1 || !a || a.k !== 'sel') throw new CelCompileError('invalid argument to has() macro');
          return { k: 'has', obj: a.obj, field: a.field };
        }
        if (!FUNCTIONS.has(t.v)) throw new CelCompileError(`undeclared reference to '${t.v}' (in container '')`);
        return { k: 'call', fn: t.v, target: undefined, args };
      }
      return { k: 'id', name: t.v };
    }
    if (t.t === 'op' && t.v === '(') { const e = this.expr(); this.eat(')'); return e; }
    if (t.t === 'op' && t.v === '[') return { k: 'list', items: this.args(']') };
    if (t.t === 'op' && t.v === '{') {
      const entries: [Node, Node][] = [];
      if (this.isOp('}')) { this.p++; return { k: 'map', entries }; }
      for (;;) {
        const key = this.expr();
        this.eat(':');
        entries.push([key, this.expr()]);
        if (this.isOp(',')) { this.p++; if (this.isOp('}')) { this.p++; break; } continue; }
        this.eat('}');
        break;
      }
      return { k: 'map', entries };
    }
    this.p--;
    return this.fail(`unexpected '${t.v || 'end of expression'}'`);
  }
}

function numberLiteral(t: Token, negative: boolean): Node {
  const n = t.v.startsWith('0x') ? parseInt(t.v, 16) : Number(t.v);
  const v = negative ? -n : n;
  return { k: 'lit', v: t.double ? new CelDouble(v) : v };
}

/** A compiled rule: parse once when the CRD is registered, evaluate per object. */
export interface CelProgram {
  source: string;
  eval(vars: Record<string, unknown>): unknown;
}

export function compileCel(source: string): CelProgram {
  const ast = new Parser(source).parse();
  checkIdentifiers(ast, new Set(['self', 'oldSelf']));
  return { source, eval: (vars) => unwrap(evaluate(ast, new Map(Object.entries(vars)))) };
}

/** Unknown identifiers are compile errors in real CEL; catch them before any object is checked. */
function checkIdentifiers(n: Node, scope: Set<string>): void {
  switch (n.k) {
    case 'id':
      if (!scope.has(n.name)) throw new CelCompileError(`undeclared reference to '${n.name}' (in container '')`);
      return;
    case 'lit': return;
    case 'sel': case 'has': return checkIdentifiers(n.obj, scope);
    case 'idx': checkIdentifiers(n.obj, scope); return checkIdentifiers(n.index, scope);
    case 'call': if (n.target) checkIdentifiers(n.target, scope); n.args.forEach((a) => checkIdentifiers(a, scope)); return;
    case 'macro': {
      checkIdentifiers(n.target, scope);
      const inner = new Set(scope).add(n.v);
      n.args.forEach((a) => checkIdentifiers(a, inner));
      return;
    }
    case 'un': return checkIdentifiers(n.e, scope);
    case 'bin': case 'and': case 'or': checkIdentifiers(n.l, scope); return checkIdentifiers(n.r, scope);
    case 'cond': checkIdentifiers(n.c, scope); checkIdentifiers(n.t, scope); return checkIdentifiers(n.f, scope);
    case 'list': return n.items.forEach((i) => checkIdentifiers(i, scope));
    case 'map': return n.entries.forEach(([a, b]) => { checkIdentifiers(a, scope); checkIdentifiers(b, scope); });
  }
}

type Env = Map<string, unknown>;

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof CelDuration) && !(v instanceof CelTimestamp) && !(v instanceof CelDouble);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : v instanceof CelDouble ? v.v : undefined);
const unwrap = (v: unknown): unknown => (v instanceof CelDouble ? v.v : v);

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'null_type';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return 'int';
  if (v instanceof CelDouble) return 'double';
  if (typeof v === 'string') return 'string';
  if (Array.isArray(v)) return 'list';
  if (v instanceof CelDuration) return 'google.protobuf.Duration';
  if (v instanceof CelTimestamp) return 'google.protobuf.Timestamp';
  return 'map';
}

function evaluate(n: Node, env: Env): unknown {
  switch (n.k) {
    case 'lit': return n.v;
    case 'id':
      if (!env.has(n.name)) throw new CelEvalError(`no such attribute: ${n.name}`);
      return env.get(n.name);
    case 'sel': {
      const o = evaluate(n.obj, env);
      if (!isMap(o)) throw new CelEvalError(`no such key: ${n.field} (on ${typeName(o)})`);
      if (!Object.hasOwn(o, n.field)) throw new CelEvalError(`no such key: ${n.field}`);
      return o[n.field];
    }
    case 'has': {
      const o = evaluate(n.obj, env);
      if (!isMap(o)) throw new CelEvalError(`invalid type for field selection: ${typeName(o)}`);
      const v = o[n.field];
      return Object.hasOwn(o, n.field) && v !== null && v !== undefined;
    }
    case 'idx': {
      const o = evaluate(n.obj, env);
      const i = unwrap(evaluate(n.index, env));
      if (Array.isArray(o)) {
        if (typeof i !== 'number' || i < 0 || i >= o.length || !Number.isInteger(i)) throw new CelEvalError(`index out of bounds: ${String(i)}`);
        return o[i];
      }
      if (isMap(o) && typeof i === 'string') {
        if (!Object.hasOwn(o, i)) throw new CelEvalError(`no such key: ${i}`);
        return o[i];
      }
      throw new CelEvalError(`no such overload: ${typeName(o)}[${typeName(i)}]`);
    }
    case 'un': {
      const v = evaluate(n.e, env);
      if (n.op === '!') {
        if (typeof v !== 'boolean') throw new CelEvalError(`no such overload: !${typeName(v)}`);
        return !v;
      }
      if (typeof v === 'number') return -v;
      if (v instanceof CelDouble) return new CelDouble(-v.v);
      if (v instanceof CelDuration) return new CelDuration(-v.ms);
      throw new CelEvalError(`no such overload: -${typeName(v)}`);
    }
    case 'and': case 'or': {
      // CEL's logical operators are commutative over errors: `false && <error>` is false.
      const short = n.k === 'or';
      let err: unknown;
      let l: unknown;
      try { l = evaluate(n.l, env); } catch (e) { err = e; }
      if (l === short) return short;
      let r: unknown;
      try { r = evaluate(n.r, env); } catch (e) { err ??= e; }
      if (r === short) return short;
      if (err) throw err;
      if (typeof l !== 'boolean' || typeof r !== 'boolean') throw new CelEvalError(`no such overload: ${typeName(l)} ${n.k === 'and' ? '&&' : '||'} ${typeName(r)}`);
      return !short;
    }
    case 'cond': {
      const c = evaluate(n.c, env);
      if (typeof c !== 'boolean') throw new CelEvalError(`no such overload: ${typeName(c)} ? _ : _`);
      return evaluate(c ? n.t : n.f, env);
    }
    case 'list': return n.items.map((i) => evaluate(i, env));
    case 'map': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of n.entries) out[String(unwrap(evaluate(k, env)))] = evaluate(v, env);
      return out;
    }
    case 'bin': return binary(n.op, evaluate(n.l, env), evaluate(n.r, env));
    case 'macro': return macro(n, env);
    case 'call': return call(n.fn, n.target === undefined ? undefined : evaluate(n.target, env), n.args.map((a) => evaluate(a, env)), n.target !== undefined);
  }
}

function macro(n: Extract<Node, { k: 'macro' }>, env: Env): unknown {
  const target = evaluate(n.target, env);
  const items = Array.isArray(target) ? target : isMap(target) ? Object.keys(target) : undefined;
  if (!items) throw new CelEvalError(`no such overload: ${typeName(target)}.${n.name}()`);
  const scoped = (x: unknown) => new Map(env).set(n.v, x);
  const pred = (x: unknown, node: Node) => {
    const r = evaluate(node, scoped(x));
    if (typeof r !== 'boolean') throw new CelEvalError(`${n.name}() predicate must be a bool, got ${typeName(r)}`);
    return r;
  };
  const body = n.args[0] as Node;
  switch (n.name) {
    case 'all': {
      let err: unknown;
      for (const x of items) {
        try { if (!pred(x, body)) return false; } catch (e) { err ??= e; }
      }
      if (err) throw err;
      return true;
    }
    case 'exists': {
      let err: unknown;
      for (const x of items) {
        try { if (pred(x, body)) return true; } catch (e) { err ??= e; }
      }
      if (err) throw err;
      return false;
    }
    case 'exists_one': return items.filter((x) => pred(x, body)).length === 1;
    case 'filter': return items.filter((x) => pred(x, body));
    default: // map
      if (n.args.length === 2) return items.filter((x) => pred(x, body)).map((x) => evaluate(n.args[1] as Node, scoped(x)));
      return items.map((x) => evaluate(body, scoped(x)));
  }
}

function equal(a: unknown, b: unknown): boolean {
  const na = num(a);
  const nb = num(b);
  if (na !== undefined && nb !== undefined) return na === nb;
  if (a instanceof CelDuration && b instanceof CelDuration) return a.ms === b.ms;
  if (a instanceof CelTimestamp && b instanceof CelTimestamp) return a.ms === b.ms;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(x, b[i]));
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal(a[k], b[k]));
  }
  return (a ?? null) === (b ?? null);
}

function compare(a: unknown, b: unknown): number {
  const na = num(a);
  const nb = num(b);
  if (na !== undefined && nb !== undefined) return na - nb;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (typeof a === 'boolean' && typeof b === 'boolean') return Number(a) - Number(b);
  if (a instanceof CelDuration && b instanceof CelDuration) return a.ms - b.ms;
  if (a instanceof CelTimestamp && b instanceof CelTimestamp) return a.ms - b.ms;
  throw new CelEvalError(`no such overload: ${typeName(a)} < ${typeName(b)}`);
}

function binary(op: string, a: unknown, b: unknown): unknown {
  switch (op) {
    case '==': return equal(a, b);
    case '!=': return !equal(a, b);
    case '<': return compare(a, b) < 0;
    case '<=': return compare(a, b) <= 0;
    case '>': return compare(a, b) > 0;
    case '>=': return compare(a, b) >= 0;
    case 'in':
      if (Array.isArray(b)) return b.some((x) => equal(a, x));
      if (isMap(b)) return typeof a === 'string' && Object.hasOwn(b, a);
      throw new CelEvalError(`no such overload: ${typeName(a)} in ${typeName(b)}`);
  }
  if (a instanceof CelDuration && b instanceof CelDuration) {
    if (op === '+') return new CelDuration(a.ms + b.ms);
    if (op === '-') return new CelDuration(a.ms - b.ms);
  }
  if (a instanceof CelTimestamp && b instanceof CelDuration) {
    if (op === '+') return new CelTimestamp(a.ms + b.ms);
    if (op === '-') return new CelTimestamp(a.ms - b.ms);
  }
  if (a instanceof CelTimestamp && b instanceof CelTimestamp && op === '-') return new CelDuration(a.ms - b.ms);
  if (op === '+' && typeof a === 'string' && typeof b === 'string') return a + b;
  if (op === '+' && Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
  const na = num(a);
  const nb = num(b);
  if (na === undefined || nb === undefined) throw new CelEvalError(`no such overload: ${typeName(a)} ${op} ${typeName(b)}`);
  const dbl = a instanceof CelDouble || b instanceof CelDouble;
  const wrap = (v: number) => (dbl ? new CelDouble(v) : v);
  switch (op) {
    case '+': return wrap(na + nb);
    case '-': return wrap(na - nb);
    case '*': return wrap(na * nb);
    case '/':
      if (!dbl && nb === 0) throw new CelEvalError('division by zero');
      return dbl ? new CelDouble(na / nb) : Math.trunc(na / nb);
    case '%':
      if (nb === 0) throw new CelEvalError('modulus by zero');
      return wrap(na % nb);
  }
  throw new CelEvalError(`unknown operator ${op}`);
}

const GO_DURATION = /^([-+]?)((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** Go's time.ParseDuration, which CEL's duration() uses. */
export function parseGoDuration(s: string): number | undefined {
  if (s === '0') return 0;
  const m = GO_DURATION.exec(s);
  if (!m) return undefined;
  let total = 0;
  for (const part of s.matchAll(/([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/g)) total += Number(part[1]) * (UNIT_MS[part[2] as string] as number);
  return m[1] === '-' ? -total : total;
}

function call(fn: string, target: unknown, args: unknown[], isMethod: boolean): unknown {
  const all = isMethod ? [target, ...args] : args;
  const [a, b] = all;
  switch (fn) {
    case 'size':
      if (typeof a === 'string') return [...a].length;
      if (Array.isArray(a)) return a.length;
      if (isMap(a)) return Object.keys(a).length;
      break;
    case 'duration':
      if (typeof a === 'string') {
        const ms = parseGoDuration(a);
        if (ms === undefined) throw new CelEvalError(`invalid duration "${a}"`);
        return new CelDuration(ms);
      }
      if (a instanceof CelDuration) return a;
      break;
    case 'timestamp':
      if (typeof a === 'string') {
        const ms = Date.parse(a);
        if (Number.isNaN(ms)) throw new CelEvalError(`invalid timestamp "${a}"`);
        return new CelTimestamp(ms);
      }
      break;
    case 'int': case 'uint': {
      if (typeof a === 'string') { const v = Number(a); if (!Number.isInteger(v)) throw new CelEvalError(`cannot convert "${a}" to int`); return v; }
      const v = num(a);
      if (v !== undefined) return Math.trunc(v);
      if (a instanceof CelDuration) return Math.trunc(a.ms * 1e6);
      if (a instanceof CelTimestamp) return Math.trunc(a.ms / 1000);
      break;
    }
    case 'double': {
      const v = typeof a === 'string' ? Number(a) : num(a);
      if (v !== undefined && !Number.isNaN(v)) return new CelDouble(v);
      break;
    }
    case 'string':
      if (typeof a === 'string') return a;
      if (typeof a === 'boolean' || typeof a === 'number') return String(a);
      if (a instanceof CelDouble) return String(a.v);
      if (a instanceof CelDuration) return `${a.ms / 1000}s`;
      if (a instanceof CelTimestamp) return new Date(a.ms).toISOString();
      break;
    case 'type': return typeName(a);
    case 'getSeconds': if (a instanceof CelDuration) return Math.trunc(a.ms / 1000); break;
    case 'getMilliseconds': if (a instanceof CelDuration) return Math.trunc(a.ms); break;
    case 'matches':
      if (typeof a === 'string' && typeof b === 'string') return new RegExp(b, 'u').test(a);
      break;
    case 'startsWith': if (typeof a === 'string' && typeof b === 'string') return a.startsWith(b); break;
    case 'endsWith': if (typeof a === 'string' && typeof b === 'string') return a.endsWith(b); break;
    case 'contains': if (typeof a === 'string' && typeof b === 'string') return a.includes(b); break;
    case 'lowerAscii': if (typeof a === 'string') return a.replace(/[A-Z]/g, (c) => c.toLowerCase()); break;
    case 'upperAscii': if (typeof a === 'string') return a.replace(/[a-z]/g, (c) => c.toUpperCase()); break;
    case 'trim': if (typeof a === 'string') return a.trim(); break;
    case 'split': if (typeof a === 'string' && typeof b === 'string') return a.split(b); break;
    case 'join': if (Array.isArray(a)) return a.join(typeof b === 'string' ? b : ''); break;
    case 'indexOf':
      if (typeof a === 'string' && typeof b === 'string') return a.indexOf(b);
      if (Array.isArray(a)) return a.findIndex((x) => equal(x, b));
      break;
    case 'isSorted': if (Array.isArray(a)) return a.every((x, i) => i === 0 || compare(a[i - 1], x) <= 0); break;
    case 'sum': if (Array.isArray(a)) return a.reduce((s: unknown, x) => binary('+', s, x), 0); break;
    case 'min': case 'max':
      if (Array.isArray(a)) {
        if (a.length === 0) throw new CelEvalError(`${fn}() of an empty list`);
        return a.reduce((m: unknown, x) => ((fn === 'min' ? compare(x, m) < 0 : compare(x, m) > 0) ? x : m));
      }
      break;
  }
  throw new CelEvalError(`no such overload: ${fn}(${all.map(typeName).join(', ')})`);
}
