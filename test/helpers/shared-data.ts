import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Where the test data shared with other projects lives (Ed25519 vectors, DNS fuzzing seeds),
 * used in place: `$MIMI_SHARED_DIR` when set, else `shared/` beside the repository, else the
 * workplace's `/work/shared`. Throws, naming every place tried, when none exists.
 */
export function sharedDataPath(...parts: string[]): string {
  const repo = resolve(import.meta.dirname, '..', '..');
  const candidates = [
    process.env['MIMI_SHARED_DIR'],
    join(repo, '..', 'shared'),
    '/work/shared',
  ].filter((c): c is string => c !== undefined && c !== '');
  for (const dir of candidates) {
    const path = join(dir, ...parts);
    if (existsSync(path)) return path;
  }
  throw new Error(
    `shared test data ${parts.join('/')} not found; tried ${candidates.join(', ')} (set MIMI_SHARED_DIR)`,
  );
}
