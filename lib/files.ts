import { readFileSync } from 'node:fs';

/**
 * A small file's trimmed text, or undefined when it is missing, unreadable or empty — for the
 * optional files a pod may have mounted (service-account namespace, projected token).
 */
export function readTrimmed(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
