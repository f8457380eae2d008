import { createHash } from 'node:crypto';
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join, relative, resolve } from 'node:path';

/**
 * A cache on disk for what the rehearsal derives from the repository and that takes seconds
 * to derive again (the synthesized app, the function bundles). An entry is named by a hash of
 * everything it is derived from, so a change to any of it names another entry: an entry is
 * never stale, only unused. It lives where tools keep such caches, under node_modules, so a
 * fresh clone or `npm ci` starts without one.
 */
export const ROOT = join(__dirname, '..');
/** QUIET_UPGRADE_CACHE_DIR puts it elsewhere (the cache's own tests do). */
export const CACHE_DIR =
  process.env.QUIET_UPGRADE_CACHE_DIR ?? join(ROOT, 'node_modules', '.cache', 'quiet-upgrade');

/**
 * A hash of these files and folders (relative to the repository, every file under a folder
 * at any depth) by path and content, and of `extra`. A path that does not exist counts as
 * absent, which is a value too.
 */
export function hashInputs(paths: string[], extra: unknown = null): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify(extra));
  const add = (path: string) => {
    let entries: string[];
    try {
      if (!statSync(path).isDirectory()) {
        hash.update(`\0file ${relative(ROOT, path)}\0`);
        hash.update(readFileSync(path));
        return;
      }
      entries = readdirSync(path).sort();
    } catch (err) {
      if ((err as { code?: string }).code !== 'ENOENT') throw err;
      hash.update(`\0absent ${relative(ROOT, path)}\0`);
      return;
    }
    for (const entry of entries) add(join(path, entry));
  };
  for (const path of paths) add(resolve(ROOT, path));
  return hash.digest('hex');
}

function entryPath(kind: string, key: string): string {
  return join(CACHE_DIR, `${kind}-${key}.json`);
}

/** The entry of this kind and key, or undefined when there is none (or it cannot be read). */
export function readEntry(kind: string, key: string): string | undefined {
  try {
    return readFileSync(entryPath(kind, key), 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Writes an entry, replacing any other entry of its kind (they were derived from other
 * inputs). The write is atomic: a process that reads at the same time (a parallel jest
 * worker) sees the whole entry or none.
 */
export function writeEntry(kind: string, key: string, text: string): void {
  try {
    mkdirSync(CACHE_DIR, { recursive: true });
    const path = entryPath(kind, key);
    const partial = `${path}.${process.pid}.tmp`;
    writeFileSync(partial, text);
    renameSync(partial, path);
    for (const name of readdirSync(CACHE_DIR)) {
      if (name.startsWith(`${kind}-`) && name.endsWith('.json') && join(CACHE_DIR, name) !== path) {
        unlinkSync(join(CACHE_DIR, name));
      }
    }
  } catch (err) {
    // A cache that cannot be written (a read-only checkout) only costs time.
    if (!['EACCES', 'EROFS', 'ENOENT', 'EPERM'].includes(String((err as { code?: string }).code)))
      throw err;
  }
}
