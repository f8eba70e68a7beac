import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, rename, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { failure } from './errors.js';

/**
 * How the command writes files: new files never replace existing ones (keys, configs), and
 * files that are meant to be replaced (a trust anchor, a key file gaining its attestation) are
 * replaced atomically, so a reader never sees half a file.
 */

/**
 * Writes a file that must not exist yet (`ERR_CLI_EXISTS` otherwise, exit 2), with `mode`
 * whatever the umask.
 */
export async function writeNew(path: string, data: string, mode: number): Promise<void> {
  try {
    await writeFile(path, data, { flag: 'wx', mode });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') {
      throw failure('ERR_CLI_EXISTS', `${path} exists: refusing to overwrite it`);
    }
    throw error;
  }
  await chmod(path, mode);
}

/** Writes `path` through a temporary file renamed over it, with `mode`. */
export async function writeReplacing(path: string, data: string, mode: number): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, data, { flag: 'wx', mode });
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * {@link writeReplacing} for content that comes in pieces (a zone export of any size): the
 * pieces are written to the temporary file as they come, with back-pressure, so memory holds a
 * piece or two; the file replaces `path` only once complete.
 */
export async function writeReplacingStream(
  path: string,
  pieces: AsyncIterable<string>,
  mode: number,
): Promise<void> {
  const temporary = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await pipeline(Readable.from(pieces), createWriteStream(temporary, { flags: 'wx', mode }));
    await chmod(temporary, mode);
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
