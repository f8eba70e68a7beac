import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { canonicalName, MimiError } from '@mimi-discovery/common';

/**
 * What the parent remembers of each child's CDS (RFC 7344 §6.1, replay): the RRSIG inception of
 * the last CDS or CDNSKEY it accepted. A CDS whose signature is not newer is ignored, so that an
 * attacker who recorded an older, still valid CDS (say the double-DS set of a roll that has since
 * finished, or the set before an emergency roll) cannot put it back.
 *
 * The state survives restarts in a small JSON file beside the store (`<dataDir>/cds-state.json`,
 * `{ "v": 1, "children": { "<zone>": <inception> } }`), written whole to a temporary file,
 * flushed, renamed over the old one and the directory flushed, so that a crash leaves the old or
 * the new file, never half of one. It is read again before each check, so the server's poller and
 * `delegate --ds-from-cds` run by hand see each other's records. It holds no secret.
 */

/** The file name of the state in the data directory. */
export const CDS_STATE_FILE = 'cds-state.json';

/** The replay state of the parent's children. */
export interface CdsReplayState {
  /** The inception of the last CDS accepted for `zone`, if any. */
  lastInception(zone: string): number | undefined;
  /** Records an accepted CDS's inception for `zone` (kept only when newer); durable on return. */
  record(zone: string, inception: number): void;
}

/** The state file cannot be read or written. */
export class CdsStateError extends MimiError<'ERR_CDS_STATE'> {}

/** The state in `path`, or in memory only when `path` is undefined (tests, ephemeral servers). */
export function openCdsState(path: string | undefined): CdsReplayState {
  const memory = new Map<string, number>();
  const read = (): Map<string, number> => (path === undefined ? memory : readState(path));
  return {
    lastInception(zone) {
      return read().get(canonicalName(zone));
    },
    record(zone, inception) {
      const state = read();
      const key = canonicalName(zone);
      if ((state.get(key) ?? -1) >= inception) return;
      state.set(key, inception);
      if (path !== undefined) writeState(path, state);
    },
  };
}

function readState(path: string): Map<string, number> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw new CdsStateError('ERR_CDS_STATE', `cannot read ${path}`, { cause: error });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CdsStateError('ERR_CDS_STATE', `${path} is not JSON`, { cause: error });
  }
  const children =
    typeof parsed === 'object' && parsed !== null && 'children' in parsed
      ? (parsed as { children: unknown }).children
      : undefined;
  if (typeof children !== 'object' || children === null) {
    throw new CdsStateError('ERR_CDS_STATE', `${path} has no "children" object`);
  }
  const out = new Map<string, number>();
  for (const [zone, value] of Object.entries(children)) {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new CdsStateError('ERR_CDS_STATE', `${path}: bad inception for ${zone}`);
    }
    out.set(canonicalName(zone), value);
  }
  return out;
}

function writeState(path: string, state: ReadonlyMap<string, number>): void {
  const text = `${JSON.stringify({ v: 1, children: Object.fromEntries(state) }, null, 2)}\n`;
  const temp = `${path}.${process.pid}.tmp`;
  try {
    const fd = openSync(temp, 'w', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, path);
    const dir = openSync(dirname(path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (error) {
    throw new CdsStateError('ERR_CDS_STATE', `cannot write ${path}`, { cause: error });
  }
}
