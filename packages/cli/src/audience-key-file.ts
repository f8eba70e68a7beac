import { readFile } from 'node:fs/promises';
import {
  formatAudienceKey,
  MimiError,
  parseAudienceKey,
  type AudienceKey,
} from '@mimi-discovery/common';
import { usageError } from './errors.js';
import { writeNew } from './files.js';
import { toBase64url } from './key-file.js';

/**
 * An audience key file (docs/protocol.md §4, "Sealed mapping"; docs/recipients.md): the one line
 * a recipient shares with the senders who may open the MSPs it sealed, preceded by comment lines:
 *
 * ```
 * # mimi-discovery audience key, key id q2C1f0n2Xk8
 * # Whoever holds the line below opens the MSPs sealed to it: share it only with them.
 * mimi-audience:3q2-7wX…
 * ```
 *
 * The line is the X25519 secret itself (a box is opened with it), so the file is created with
 * mode 0600 and never overwritten: overwriting would lose the key that holders of the old line
 * still use, while the recipient's published boxes name it. The recipient seals with the public
 * key derived from it; a sender opens with it. It is read locally and never sent anywhere.
 */

/** Mode of a new audience key file: it holds a secret. */
export const AUDIENCE_KEY_FILE_MODE = 0o600;

/** The key id as printed and as results name it (`audience`): base64url of the 8 octets. */
export function audienceKeyIdText(key: AudienceKey): string {
  return toBase64url(key.kid);
}

/** The text of an audience key file for `key`. */
export function audienceKeyFileText(key: AudienceKey): string {
  return (
    `# mimi-discovery audience key, key id ${audienceKeyIdText(key)}\n` +
    '# Whoever holds the line below opens the MSPs sealed to it: share it only with them.\n' +
    `${formatAudienceKey(key)}\n`
  );
}

/** Writes a new audience key file (`ERR_CLI_EXISTS`, exit 2, when `path` exists). */
export async function writeAudienceKeyFile(path: string, key: AudienceKey): Promise<void> {
  await writeNew(path, audienceKeyFileText(key), AUDIENCE_KEY_FILE_MODE);
}

/**
 * Reads the audience key in `path` (given on the command line as `given` to `flag`); a file that
 * cannot be read or holds no audience key is a usage error (exit 1) naming the flag and file.
 */
export async function readAudienceKeyFile(
  flag: string,
  given: string,
  path: string,
): Promise<AudienceKey> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw usageError('ERR_USAGE', `${flag} ${given}: cannot read it`, error);
  }
  try {
    return await parseAudienceKey(text);
  } catch (error) {
    if (error instanceof MimiError) {
      throw usageError(error.code, `${flag} ${given}: ${error.message}`, error);
    }
    throw error;
  }
}
