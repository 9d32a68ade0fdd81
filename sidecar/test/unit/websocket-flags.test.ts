import { describe, expect, it } from 'vitest';
import { parseCliOptions, UsageError } from '../../src/cli-options.ts';

describe('WebSocket flags', () => {
  it('default to pings every 30 s with a 10 s timeout, a 10 s drain window and 30 s Global leases', () => {
    const o = parseCliOptions(['--config', 'a.yaml']);
    if (o === 'help') throw new Error('help');
    expect([o.websocketPingIntervalMs, o.websocketPingTimeoutMs, o.websocketDrainWindowMs, o.websocketQuotaLeaseMs]).toEqual([30_000, 10_000, 10_000, 30_000]);
  });

  it('read durations from flags and SLUICE_* variables; 0 turns pings off and closes all at once', () => {
    const o = parseCliOptions(['--config', 'a.yaml', '--websocket-ping-interval', '0', '--websocket-drain-window', '0'], { SLUICE_WEBSOCKET_PING_TIMEOUT: '2s', SLUICE_WEBSOCKET_QUOTA_LEASE: '1m' });
    if (o === 'help') throw new Error('help');
    expect([o.websocketPingIntervalMs, o.websocketPingTimeoutMs, o.websocketDrainWindowMs, o.websocketQuotaLeaseMs]).toEqual([0, 2_000, 0, 60_000]);
  });

  it('refuse what is not a duration, naming the flag', () => {
    expect(() => parseCliOptions(['--config', 'a', '--websocket-ping-timeout', '0'])).toThrow(UsageError);
    expect(() => parseCliOptions(['--config', 'a', '--websocket-drain-window', 'soon'])).toThrow(/--websocket-drain-window/);
    expect(() => parseCliOptions(['--config', 'a', '--websocket-quota-lease', '-1s'])).toThrow(/--websocket-quota-lease/);
  });
});
