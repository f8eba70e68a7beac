import type { ResourceRecord } from '@mimi-discovery/common';

/**
 * Interim: the journal entry type of the store contract (issue 14 §1), so that zone transfers
 * compile against it. The store's journal itself (`journalEntry`, its codec and limits) replaces
 * this file.
 */

/** One serial change as IXFR sends it (RFC 1995 §4). `deleted[0]` is the SOA of `from`,
 *  `added[0]` the SOA of `to`; the rest are every other record (RRSIGs and NSEC3 included)
 *  removed from / added to the zone by that write, in canonical order. */
export interface JournalEntry {
  readonly from: number;
  readonly to: number;
  readonly deleted: readonly ResourceRecord[];
  readonly added: readonly ResourceRecord[];
}
