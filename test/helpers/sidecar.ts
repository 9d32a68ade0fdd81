import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sidecar, type SidecarOptions } from '../../sidecar/src/sidecar.ts';

export interface RunningSidecar {
  sidecar: Sidecar;
  /** http://127.0.0.1:<port> of the inbound HTTP listener. */
  url: string;
  admin: string;
  localApi: string;
  configPath: string;
  writeConfig(yaml: string): void;
  stop(graceMs?: number): Promise<void>;
}

/**
 * An in-process sidecar in standalone mode on free loopback ports, for integration tests that
 * drive it with real clients. `yaml` is written to a temp file the sidecar watches.
 */
export async function startSidecar(yaml: string, opts: Partial<SidecarOptions> = {}): Promise<RunningSidecar> {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
  const configPath = join(dir, 'sluice.yaml');
  writeFileSync(configPath, yaml);
  const sidecar = new Sidecar({
    config: configPath,
    listenHttp: '127.0.0.1:0',
    listenGrpc: '127.0.0.1:0',
    admin: '127.0.0.1:0',
    localApi: '127.0.0.1:0',
    id: `test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    shutdownGraceMs: 2_000,
    logLevel: process.env.SLUICE_TEST_LOG === '1' ? 'debug' : 'silent',
    ...opts,
  });
  const a = await sidecar.start();
  return {
    sidecar,
    url: a.http ? `http://127.0.0.1:${a.http.port}` : '',
    admin: `http://127.0.0.1:${a.admin!.port}`,
    localApi: `http://127.0.0.1:${a.localApi!.port}`,
    configPath,
    writeConfig: (text) => writeFileSync(configPath, text),
    stop: (graceMs) => sidecar.stop(graceMs),
  };
}
