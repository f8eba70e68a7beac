import { BlockList, isIPv4, isIPv6 } from 'node:net';
import {
  HEADER_OCTETS,
  MAX_MESSAGE_OCTETS,
  MAX_RECORDS_PER_MESSAGE,
  canonicalName,
  clientKeyOf,
  encodeRecord,
  nameWireLength,
  respondError,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Message,
  type QueryContext,
  type ResourceRecord,
  type TransferHandler,
  type TransferResponse,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import { zoneRecordsAt } from '../zone/zone-export.js';

/**
 * Outgoing zone transfers (AXFR, RFC 5936) over TCP: the zones a server offers, to whom, and
 * how a zone becomes a sequence of messages. Today only the root directory offers its zone (a
 * zone of public delegations that resolvers keep a copy of, RFC 8806); the policy is per zone
 * and per client address, so that transfers of other zones to secondaries (with TSIG, IXFR)
 * extend it rather than replace it.
 *
 * Rules:
 * - AXFR only over TCP (RFC 5936 §4.2: not over UDP); the UDP and DoH listeners never call this
 *   handler, and the answerer refuses AXFR there.
 * - A zone not offered, a name that is not a zone's apex, a class other than IN or a client
 *   outside the allowed address ranges: REFUSED (RFC 5936 §2.2.1 leaves the rcode of a refusal
 *   to the server; REFUSED is what BIND, Knot and NSD send).
 * - At most `transfersPerClient` transfers at once per client (an IPv4 address or an IPv6 /64,
 *   `clientKeyOf`); a further one is REFUSED until one ends, so one client cannot hold many
 *   copies of the zone in the server's send buffers.
 * - The zone as answered at the time of the query (`zoneRecordsAt`: the stored records, RRSIGs
 *   included, expired mappings left out), read in one piece, so a write during a transfer never
 *   mixes two serials; the SOA first and last (RFC 5936 §2.2), in messages of at most
 *   {@link MAX_TRANSFER_MESSAGE_OCTETS}, each a response to the query with AA set, the question
 *   in the first only (§2.2.1).
 *
 * Worked example: a root zone of 2,000 records with a 300-octet average fits about 200 records
 * per 64 KiB message, so an AXFR gets 10 messages, the first opening with the SOA, the last
 * closing with it.
 */

/** Largest message of a transfer: the 16-bit length of DNS over TCP (RFC 1035 §4.2.2). */
export const MAX_TRANSFER_MESSAGE_OCTETS = MAX_MESSAGE_OCTETS;

/** Default transfers one client may have running at once (config `transfer.transfersPerClient`). */
export const TRANSFERS_PER_CLIENT = 1;

/** Who may transfer which zones. */
export interface TransferPolicy {
  /** Zones offered, by origin. */
  readonly zones: readonly string[];
  /**
   * Address ranges (CIDR: `192.0.2.0/24`, `2001:db8::/32`, or one address) allowed to
   * transfer; absent: anyone (a public zone).
   */
  readonly allow?: readonly string[];
  /** Default {@link TRANSFERS_PER_CLIENT}. */
  readonly transfersPerClient?: number;
}

/** What a transfer handler uses besides its store and policy. */
export interface TransferComponents {
  /** The server's clock: mappings are left out once expired (`zoneRecordsAt`). */
  readonly now?: Clock;
  readonly log?: Logger;
  /** Called once per AXFR with how it went: `ok`, `refused` or `aborted` (cut off midway). */
  readonly onTransfer?: (outcome: TransferOutcome) => void;
}

/** How one AXFR went, for metrics. */
export type TransferOutcome = 'ok' | 'refused' | 'aborted';

/**
 * Parses address ranges into a matcher. Throws `TypeError` naming the first range that is not
 * an IPv4 or IPv6 address with an optional prefix length in range (the config schema checks
 * them the same way, with {@link isAddressRange}).
 */
export function addressRanges(ranges: readonly string[]): BlockList {
  const list = new BlockList();
  for (const range of ranges) {
    const parsed = parseRange(range);
    if (parsed === undefined)
      throw new TypeError(`${JSON.stringify(range)} is not an address range`);
    list.addSubnet(parsed.address, parsed.prefix, parsed.family);
  }
  return list;
}

/** Whether `text` is an address range {@link addressRanges} accepts. */
export function isAddressRange(text: string): boolean {
  return parseRange(text) !== undefined;
}

function parseRange(
  text: string,
): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefix, extra] = text.split('/');
  if (extra !== undefined) return undefined;
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : undefined;
  if (family === undefined) return undefined;
  const max = family === 'ipv4' ? 32 : 128;
  if (prefix === undefined) return { address, prefix: max, family };
  if (!/^(0|[1-9][0-9]{0,2})$/.test(prefix) || Number(prefix) > max) return undefined;
  return { address, prefix: Number(prefix), family };
}

/** Whether `address` (as a socket reports it) is in `ranges`. */
function allowed(ranges: BlockList, address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  if (mapped !== undefined && isIPv4(mapped)) return ranges.check(mapped, 'ipv4');
  if (isIPv4(address)) return ranges.check(address, 'ipv4');
  if (isIPv6(address)) return ranges.check(address, 'ipv6');
  return false;
}

/** Creates the AXFR handler of a server over `store` (a `TransferHandler` for its TCP listener). */
export function createTransferHandler(
  store: DiscoveryStore,
  policy: TransferPolicy,
  components: TransferComponents = {},
): TransferHandler {
  const zones = new Set(policy.zones.map((zone) => canonicalName(zone)));
  const ranges = policy.allow === undefined ? undefined : addressRanges(policy.allow);
  const perClient = policy.transfersPerClient ?? TRANSFERS_PER_CLIENT;
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const running = new Map<string, number>();

  return (query: Message, context: QueryContext): TransferResponse => {
    const question = query.questions[0];
    const zone = question === undefined ? undefined : canonicalName(question.name);
    const refuse = (why: string): Message => {
      // Design §10: the zone and why, never the client's address.
      log.info('transfer-refused', { zone, why });
      components.onTransfer?.('refused');
      return respondError(query, 'REFUSED');
    };
    if (question === undefined || zone === undefined || question.class !== 'IN') {
      return refuse('class');
    }
    if (!zones.has(zone) || !store.listZones().includes(zone)) return refuse('zone-not-offered');
    if (ranges !== undefined && !allowed(ranges, context.remoteAddress)) {
      return refuse('client-not-allowed');
    }
    const client = clientKeyOf(context.remoteAddress);
    const active = running.get(client) ?? 0;
    if (active >= perClient) return refuse('client-busy');
    running.set(client, active + 1);
    const records = zoneRecordsAt(store, zone, Math.floor(now()));
    return transferMessages(
      query,
      records,
      () => {
        const left = (running.get(client) ?? 1) - 1;
        if (left <= 0) running.delete(client);
        else running.set(client, left);
      },
      (outcome) => {
        log.info(outcome === 'ok' ? 'transfer-done' : 'transfer-aborted', {
          zone,
          records: records.length,
        });
        components.onTransfer?.(outcome);
      },
    );
  };
}

/**
 * The messages of one transfer of `records` (SOA first), each as large as
 * {@link MAX_TRANSFER_MESSAGE_OCTETS} allows; `release` runs once when the iteration ends,
 * completed or cut off, and `report` says which.
 */
async function* transferMessages(
  query: Message,
  records: readonly ResourceRecord[],
  release: () => void,
  report: (outcome: TransferOutcome) => void,
): AsyncGenerator<Message> {
  let completed = false;
  try {
    const soa = records[0];
    const all = soa === undefined ? [] : [...records, soa];
    let sent = 0;
    for (const answers of packMessages(query, all)) {
      const message = respondError(query, 'NOERROR');
      message.flags.aa = true;
      // RFC 5936 §2.2.1: the question only in the first message.
      if (sent++ > 0) message.questions = [];
      message.answers = answers;
      yield message;
    }
    completed = true;
  } finally {
    release();
    report(completed ? 'ok' : 'aborted');
  }
}

/**
 * `records` cut into the answer sections of consecutive messages. A record's size is that of its
 * uncompressed wire form, an upper bound of what it takes in a message (compression only
 * shortens), so each message stays within {@link MAX_TRANSFER_MESSAGE_OCTETS} and within the
 * codec's {@link MAX_RECORDS_PER_MESSAGE}.
 */
function* packMessages(
  query: Message,
  records: readonly ResourceRecord[],
): Generator<ResourceRecord[]> {
  const question = query.questions[0];
  // Header, question, and room for an OPT record with no options (11 octets).
  const overhead =
    HEADER_OCTETS + (question === undefined ? 0 : nameWireLength(question.name) + 4) + 11;
  let batch: ResourceRecord[] = [];
  let size = overhead;
  for (const rr of records) {
    const octets = encodeRecord(rr).length;
    if (
      batch.length > 0 &&
      (size + octets > MAX_TRANSFER_MESSAGE_OCTETS || batch.length + 2 > MAX_RECORDS_PER_MESSAGE)
    ) {
      yield batch;
      batch = [];
      size = overhead;
    }
    batch.push(rr);
    size += octets;
  }
  if (batch.length > 0) yield batch;
}
