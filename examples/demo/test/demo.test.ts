import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runInNewContext } from 'node:vm';
import { afterAll, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../../test/helpers/eventually.ts';
import type { LiveSnapshot } from '../../../sidecar/src/admin/live-page.ts';

/**
 * `npm run demo`, run for real (fast mode: no pauses for reading) and checked for what it claims
 * to show, then stopped with SIGINT as Ctrl-C would: every process it started must be gone.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

let demo: ChildProcess | undefined;
let output = '';
let descendants: number[] = [];

/** Every process below `root`, from the ps table (pid, ppid). */
function descendantsOf(root: number): number[] {
  const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8' });
  const children = new Map<number, number[]>();
  for (const line of table.trim().split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number) as [number, number];
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      found.push(c);
      walk(c);
    }
  };
  walk(root);
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const match = (re: RegExp): RegExpMatchArray => {
  const m = output.match(re);
  if (!m) throw new Error(`demo output has no ${re}:\n${output}`);
  return m;
};

afterAll(() => {
  // Only if a check failed midway: take down whatever is left.
  for (const pid of [...descendants, ...(demo?.pid ? [demo.pid] : [])]) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

describe('npm run demo', () => {
  it('shows limits, a breaker opening and closing, a leader failing over, tasks retried and dead-lettered, and calls through an Upstream surviving a killed replica; Ctrl-C leaves nothing running', async () => {
    demo = spawn(process.execPath, ['examples/demo/demo.ts', '--fast', '--duration', '5m'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    demo.stdout!.on('data', (d: Buffer) => (output += d.toString()));
    demo.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => demo!.once('exit', (code, signal) => resolve({ code, signal })));

    await eventually(() => expect(output).toMatch(/\n {2}live {13}.*\n/), { timeoutMs: 110_000, intervalMs: 200 });
    descendants = descendantsOf(demo.pid as number);
    // 4 redis-servers, 6 apps (a seventh, a user-service replica, was killed), 5 sidecars (one restarted after the failover).
    expect(descendants.length).toBeGreaterThanOrEqual(15);

    // 1. limits: GetUser past the Global limit, and a WebSocket flood.
    const [, admitted, limited] = match(/admitted (\d+) · limited (\d+) \(RESOURCE_EXHAUSTED/).map(Number);
    // 5000 per minute; a Global limit may be off by the tokens its sidecar leases in a batch.
    expect(admitted).toBeGreaterThan(4_500);
    expect(limited).toBeGreaterThan(0);
    expect((admitted as number) + (limited as number)).toBe(5_200);
    expect(output).toContain('the sidecar closes the connection: 1008 (message rate limit exceeded)');
    // 2. the breaker opened while the app failed and closed once it recovered.
    expect(match(/ListUsers ×10: (\d+) × UNAVAILABLE from the app, then (\d+) × UNAVAILABLE from the open circuit/).slice(1).map(Number)).toEqual([5, 5]);
    expect(output).toMatch(/circuit: open\n[\s\S]*half-open[\s\S]*circuit: closed\n/);
    // 3. the leader failed over, with a higher fencing token.
    const [, from, fromToken, to, toToken] = match(/leader changed: (\S+) \(token (\d+)\) → (\S+) \(token (\d+)\)/);
    expect(from).not.toBe(to);
    expect(Number(toToken)).toBeGreaterThan(Number(fromToken));
    expect(output).toContain(`sidecar restarted`);
    expect(output).toMatch(new RegExp(`it follows ${to} \\(token ${toToken}\\)`));
    // 4. tasks: 27 valid orders completed (some after a retry), 3 invalid ones dead-lettered.
    const [, completed, retried, dead] = match(/tasks: completed (\d+) · retried (\d+) · dead-lettered (\d+)/).map(Number);
    expect(completed).toBe(27);
    expect(retried).toBeGreaterThan(0);
    expect(dead).toBe(3);
    expect(output).toMatch(/a dead letter: task \S+ after 1 attempt\(s\): http 422/);
    // 5. the order API's GetUser calls through its sidecar's Upstream: one user-service replica
    // killed under load, not one unary call failed, and the calls spread over the replicas.
    const [, orders, queued, failedLookups] = match(/orders (\d+): customer looked up and order queued (\d+) · failed lookups \(unary GetUser\) (\d+)/).map(Number);
    expect(failedLookups).toBe(0);
    expect(queued).toBe(orders);
    expect(orders).toBeGreaterThanOrEqual(900);
    const perReplica = (line: string) => [...line.matchAll(/(user-service(?:-\d)?) (\d+)/g)].map((m) => [m[1], Number(m[2])] as const);
    const before = perReplica(match(/per replica, before the kill: (.*)\n/)[1] as string);
    const after = perReplica(match(/after the kill: (.*)\n/)[1] as string);
    expect(before.map(([name]) => name)).toEqual(['user-service', 'user-service-1', 'user-service-2']);
    // Before the kill every replica answered a share of the calls (LeastRequest weighs latency, so
    // the shares need not be equal); after it, the killed one answered none, the others the rest.
    for (const [name, calls] of before) expect(calls, name).toBeGreaterThan(0);
    const total = before.reduce((a, [, n]) => a + n, 0) + after.reduce((a, [, n]) => a + n, 0);
    expect(total).toBe(orders);
    expect(after.find(([name]) => name === 'user-service-2')?.[1]).toBeLessThanOrEqual(16); // at most the calls in flight at the kill
    for (const [name, calls] of after.filter(([n]) => n !== 'user-service-2')) expect(calls, name).toBeGreaterThan(0);
    expect(output).toMatch(/upstream {9}\d+ GetUser calls over 3 replicas \(\d+ \/ \d+ \/ \d+\), 0 failed after user-service-2 was killed/);

    // The live page and its JSON, from the URL the demo printed.
    const pageUrl = match(/live page: (http:\/\/\S+)/)[1] as string;
    const page = await fetch(pageUrl);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=/); // no external assets
    const rendered = await renderPage(html, pageUrl);
    if (process.env.SHOW_PAGE) console.log(rendered);
    for (const id of ['user-service-0', 'push-hub-a', 'push-hub-b', 'order-worker-0', 'order-api-0', 'LEADER', 'shop/user-api/backend', 'dead_lettered']) expect(rendered).toContain(id);

    const admin = new URL(pageUrl).origin;
    const liveRes = await fetch(`${admin}/v1/live`, { headers: { origin: 'http://127.0.0.1:9' } });
    expect(liveRes.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:9');
    const live = (await liveRes.json()) as LiveSnapshot;
    expect(live.id).toBe('user-service-0');
    expect(live.rateLimits['shop/user-api/get-user-rpc']?.limited).toBeGreaterThanOrEqual(limited as number);
    expect(live.circuits['shop/user-api/backend']).toMatchObject({ state: 'closed' });
    expect(live.circuits['shop/user-api/backend']?.opened).toBeGreaterThanOrEqual(1);
    const foreign = await fetch(`${admin}/v1/live`, { headers: { origin: 'https://example.com' } });
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    await foreign.arrayBuffer();

    // Ctrl-C: the demo stops everything it started and exits.
    demo.kill('SIGINT');
    expect(await exited).toEqual({ code: 130, signal: null });
    expect(output).toMatch(/Ctrl-C: stopping \d+ processes/);
    expect(output).toMatch(/stopped: every process the demo started \(\d+, counting restarts\) has exited/);
    const stillRunning = descendants.filter(alive);
    expect(stillRunning).toEqual([]);
    expect(descendantsOf(demo.pid as number)).toEqual([]);
  }, 160_000);
});

/**
 * Runs the page's inline script once, against a minimal DOM and the real network, and returns the
 * text it rendered (sidecar/test/admin/live-page.browser.test.ts runs it in a real browser).
 */
async function renderPage(html: string, url: string): Promise<string> {
  const script = html.match(/<script>([\s\S]*?)<\/script>/)?.[1];
  if (!script) throw new Error('no inline script');
  class Node {
    textContent = '';
    className = '';
    children: (Node | string)[] = [];
    style: Record<string, string> = {};
    setAttribute() {}
    append(...nodes: (Node | string)[]) {
      this.children.push(...nodes);
    }
    replaceChildren(...nodes: Node[]) {
      this.children = nodes;
    }
    text(): string {
      return [this.textContent, ...this.children.map((c) => (typeof c === 'string' ? c : c.text()))].join(' ');
    }
  }
  const nodes = new Map<string, Node>([['grid', new Node()], ['at', new Node()]]);
  const u = new URL(url);
  const timers: (() => void)[] = [];
  runInNewContext(script, {
    document: { createElement: () => new Node(), createElementNS: () => new Node(), getElementById: (id: string) => nodes.get(id) },
    location: { origin: u.origin, search: u.search },
    URL, URLSearchParams, fetch, console,
    setTimeout: (fn: () => void) => timers.push(fn),
  });
  await eventually(() => {
    expect(timers.length).toBe(1); // one poll finished and scheduled the next
  }, { timeoutMs: 10_000 });
  await sleep(0);
  return (nodes.get('grid') as Node).text();
}
