import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrderWorker, type OrderWorker } from '../../../examples/order-worker/worker.ts';
import { startUserService, userServiceClient, type UserServiceClient } from '../../../examples/user-service/user-service.ts';
import { RedisServer } from '../../../test/helpers/redis-server.ts';
import { spawnSidecar, type SidecarProcess } from '../../../test/helpers/sidecar-process.ts';
import { sleep } from '../../../test/helpers/eventually.ts';

/**
 * The live page in a real browser (Debian's Chromium, driven by playwright-core) against real
 * sluice-proxy processes carrying real traffic: a gRPC app with a rate limit and a breaker, and a
 * worker consuming a Redis Streams queue. The page must draw its plots from the sidecars' live
 * data, lay its tables out without overflow, and run without a console error or a CSP violation.
 * Screenshots are kept in .cache/artifacts/.
 */
// The callbacks given to page.evaluate and friends run in the page, where these exist; the
// project's types are Node's, without the DOM.
declare const document: any, window: any, getComputedStyle: any;

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../../.cache/artifacts/', import.meta.url));
// No outside network here: without these Chromium stalls on lookups it makes at start.
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let redis: RedisServer;
let users: Awaited<ReturnType<typeof startUserService>>;
let worker: OrderWorker;
let front: SidecarProcess;
let queue: SidecarProcess;
let client: UserServiceClient;
let browser: BrowserContext;
let profile: string;
let trafficRunning = true;
let traffic: Promise<void> = Promise.resolve();

/** GetUser calls at about 50/s, and an order every half second (some invalid: dead-lettered). */
async function runTraffic(): Promise<void> {
  let n = 0;
  while (trafficRunning) {
    n++;
    await Promise.all(Array.from({ length: 10 }, (_, i) => new Promise<void>((resolve) => client.GetUser({ id: String(i) }, { deadline: Date.now() + 5_000 }, () => resolve()))));
    if (n % 2 === 0) {
      await fetch(`${queue.localApi}/v1/queues/orders/tasks`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': `ui-${n}` },
        body: JSON.stringify({ orderId: `ui-${n}`, sku: 'SKU-1', qty: n % 10 === 0 ? 0 : 1 }),
        signal: AbortSignal.timeout(5_000),
      }).then((r) => r.arrayBuffer(), () => undefined);
    }
    await sleep(200);
  }
}

interface PageWatch {
  page: Page;
  errors: string[];
}

/** A page that records console errors, uncaught exceptions and CSP violations. */
async function openPage(url: string): Promise<PageWatch> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  // Runs before the page's own script (through the DevTools protocol, so the CSP does not apply to it).
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e: { violatedDirective: string; blockedURI: string }) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  const res = await page.goto(url, { timeout: 20_000 });
  expect(res?.status()).toBe(200);
  return { page, errors };
}

/** Waits until every card's plot titled `title` has drawn at least `points` points. */
async function waitForPlot(page: Page, title: string, cards: number, points: number): Promise<void> {
  await page.waitForFunction(
    ({ title, cards, points }) => {
      const plots = [...document.querySelectorAll(`svg[data-plot="${title}"]`)];
      return plots.length === cards && plots.every((p) => Number(p.getAttribute('data-points')) >= points);
    },
    { title, cards, points },
    { timeout: 60_000, polling: 250 },
  );
}

/** Elements whose content is wider than their box (a cut-off table cell, a card wider than the grid). */
function overflowing(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    for (const e of document.querySelectorAll('td, table, .card, .plot')) {
      if (e.scrollWidth > e.clientWidth) out.push(`${e.tagName.toLowerCase()}.${e.className}: "${(e.textContent ?? '').slice(0, 60)}" ${e.scrollWidth} > ${e.clientWidth}`);
    }
    if (document.documentElement.scrollWidth > window.innerWidth) out.push(`page: ${document.documentElement.scrollWidth} > ${window.innerWidth}`);
    return out;
  });
}

const plotPoints = (page: Page) =>
  page.$$eval('svg[data-plot]', (svgs) => svgs.map((s) => [s.closest('.card')?.querySelector('h2')?.textContent, s.getAttribute('data-plot'), Number(s.getAttribute('data-points'))] as const));

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the live page is tested in a real browser: ${CHROMIUM} is missing. Install Debian's Chromium (apt-get install chromium; .ci/run does it)`);
  }
  redis = await RedisServer.start();
  users = await startUserService();
  worker = await startOrderWorker({ failRate: 0.3 });
  front = await spawnSidecar(['--config', 'examples/user-service/sluice.yaml', '--labels', 'app=user-service', '--app-grpc', `127.0.0.1:${users.port}`, '--id', 'ui-user-service', '--log-level', 'warn']);
  queue = await spawnSidecar(['--config', 'examples/order-worker/sluice.yaml', '--labels', 'app=order-worker', '--app-http', `127.0.0.1:${worker.port}`, '--redis', redis.url, '--id', 'ui-order-worker', '--log-level', 'warn']);
  client = userServiceClient(`127.0.0.1:${front.ports.grpc}`);
  traffic = runTraffic();
  profile = mkdtempSync(join(tmpdir(), 'sluice-chromium-'));
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 90_000, // a cold start beside the rest of the suite took over 30 s
    viewport: { width: 1366, height: 768 },
  });
  mkdirSync(ARTIFACTS, { recursive: true });
}, 150_000);

afterAll(async () => {
  trafficRunning = false;
  await traffic;
  await browser?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  client?.close();
  for (const s of [front, queue]) s?.kill('SIGTERM');
  await Promise.all([front?.exited, queue?.exited]);
  await Promise.all([users?.close(), worker?.close(), redis?.stop()]);
});

describe('the live page in Chromium', () => {
  it('/ui plots requests, latency and the circuit from live data, with tables that fit, and no error or CSP violation', async () => {
    const { page, errors } = await openPage(`${front.admin}/ui`);
    await waitForPlot(page, 'requests / s by decision', 1, 5);
    await waitForPlot(page, 'latency to the app, ms', 1, 3);
    await waitForPlot(page, 'circuits', 1, 3);
    const plots = await plotPoints(page);
    expect(plots.map(([, title]) => title)).toEqual(['requests / s by decision', 'latency to the app, ms', 'circuits']);
    // The legend carries the latest values: traffic is flowing, the circuit is closed.
    const legend = await page.textContent('svg[data-plot="requests / s by decision"] >> xpath=..');
    expect(legend).toMatch(/allowed \d/);
    expect(await page.textContent('svg[data-plot="circuits"]')).toContain('shop/user-api/backend · closed');
    expect(await page.textContent('#grid')).toContain('example.UserService/GetUser');
    // Numbers sit right-aligned in their own cells.
    const counts = await page.$$eval('td.n', (tds) => tds.map((td) => getComputedStyle(td).textAlign));
    expect(counts.length).toBeGreaterThan(3);
    expect(new Set(counts)).toEqual(new Set(['right']));
    expect(await overflowing(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'live-page-one.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('/ui?peers= shows the same per sidecar, with the queue length and lag of the worker', async () => {
    const { page, errors } = await openPage(`${front.admin}/ui?peers=${queue.admin}`);
    await waitForPlot(page, 'requests / s by decision', 1, 5);
    await page.waitForFunction(() => [...document.querySelectorAll('svg[data-plot^="queue · "]')].some((p) => Number(p.getAttribute('data-points')) >= 3), undefined, { timeout: 60_000, polling: 250 });
    const cards = await page.$$eval('.card h2', (h) => h.map((e) => e.textContent));
    expect(cards).toEqual(['ui-user-service', 'ui-order-worker']);
    const plots = await plotPoints(page);
    expect(plots.filter(([card]) => card === 'ui-order-worker').map(([, title]) => title)).toContain('queue · orders');
    // No adaptive limit or upstream is reported by these sidecars: no such plot, no empty box.
    expect(plots.filter(([, title]) => /adaptive|upstream/.test(title ?? ''))).toEqual([]);
    expect(await page.textContent('svg[data-plot="queue · orders"] >> xpath=..')).toMatch(/length \d+.*lag \d+/);
    expect(await overflowing(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'live-page-peers.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it('draws "adaptive limit vs in flight" and "upstream endpoints" once /v1/live carries those sections', async () => {
    // No feature here reports them yet: the sidecar's real answer gets the two sections added on
    // its way to the page, in the shape a feature reports them (history.gauges: name → field → values).
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.route('**/v1/live', async (route) => {
      const res = await route.fetch();
      const live = (await res.json()) as { history?: { at: number[]; gauges: Record<string, unknown> } };
      if (live.history) {
        const at = live.history.at;
        live.history.gauges.adaptiveLimits = { 'shop/user-api/backend': { limit: at.map((_, i) => 20 + (i % 7)), inFlight: at.map((_, i) => i % 9) } };
        live.history.gauges.upstreams = { 'shop/inventory': { ready: at.map(() => 3), ejected: at.map((_, i) => (i % 20 < 5 ? 1 : 0)) } };
      }
      await route.fulfill({ response: res, json: live });
    });
    await page.goto(`${front.admin}/ui`, { timeout: 20_000 });
    await waitForPlot(page, 'adaptive limit vs in flight · shop/user-api/backend', 1, 3);
    await waitForPlot(page, 'upstream endpoints · shop/inventory', 1, 3);
    expect(await page.textContent('svg[data-plot="adaptive limit vs in flight · shop/user-api/backend"] >> xpath=..')).toMatch(/limit \d+.*inFlight \d+/);
    expect(await page.textContent('svg[data-plot="upstream endpoints · shop/inventory"] >> xpath=..')).toMatch(/ready 3.*ejected \d/);
    expect(await overflowing(page)).toEqual([]);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
