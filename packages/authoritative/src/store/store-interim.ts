import type { ResourceRecord } from '@mimi-discovery/common';
import type { JournalEntry } from '../zone/journal.js';
import { StoreError } from './store-error.js';
import type { ApplyResult } from './store-types.js';

/**
 * Interim: the three store methods zone transfers use (issue 14 §1), in their simplest correct
 * form, until the store's own journal, NSEC3 chain and streaming reads replace this file: the
 * whole zone read at once and handed out in batches; no journal (every IXFR is answered with the
 * whole zone, RFC 1995 §4); no NSEC3 chain (asking for one is refused).
 */

/** Records per batch of {@link streamFromReadZone}. */
const INTERIM_BATCH_RECORDS = 1000;

/** `readZone`'s records, one snapshot, in batches. */
export async function* streamFromReadZone(
  readZone: () => ResourceRecord[],
): AsyncGenerator<readonly ResourceRecord[]> {
  const records = readZone();
  for (let i = 0; i < records.length; i += INTERIM_BATCH_RECORDS) {
    yield records.slice(i, i + INTERIM_BATCH_RECORDS);
  }
}

/** No journal: undefined for a zone the store holds (`serial` throws for one it does not). */
export function noJournal(serial: () => number): Promise<JournalEntry[] | undefined> {
  try {
    serial();
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.resolve(undefined);
}

/** No NSEC3 chain: turning it off is a no-op, turning it on is refused. */
export function noNsec3(serial: () => number, enabled: boolean): Promise<ApplyResult> {
  try {
    const current = serial();
    if (!enabled) return Promise.resolve({ serial: current });
  } catch (error) {
    return Promise.reject(error);
  }
  return Promise.reject(
    new StoreError('ERR_STORE_BAD_CHANGE', 'this store does not keep an NSEC3 chain yet'),
  );
}
