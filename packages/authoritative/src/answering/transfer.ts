import { Buffer } from 'node:buffer';
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import {
  MAX_MESSAGE_OCTETS,
  MAX_RECORDS_PER_MESSAGE,
  TSIG_FUDGE_SECONDS,
  canonicalName,
  clientKeyOf,
  compareSerials,
  encodeMessage,
  respondError,
  silentLogger,
  systemClock,
  tsigRecordOctets,
  WireError,
  type Clock,
  type Logger,
  type Message,
  type QueryContext,
  type RecordOf,
  type ResourceRecord,
  type TransferHandler,
  type TransferResponse,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';
import type { JournalEntry } from '../zone/journal.js';

/**
 * Outgoing zone transfers: AXFR (RFC 5936) and IXFR (RFC 1995), the zones a server offers, to
 * whom, and how a zone or its changes become a sequence of messages. The root directory offers
 * its zone to resolvers that keep a copy (RFC 8806), to anyone by default; a DP offers its zones
 * to its own secondaries (NSD, Knot, BIND: a hidden primary, `docs/operations.md`), authorised by
 * TSIG keys (RFC 8945, verified by the listener before this handler runs, `respond.ts` of
 * common) and address ranges.
 *
 * Rules, checked in this order (each refusal logged with the zone and why, never the client's
 * address, and counted):
 * - A zone not offered, a name that is not a zone's apex, a class other than IN: REFUSED
 *   (RFC 5936 §2.2.1 leaves the rcode of a refusal to the server; REFUSED is what BIND, Knot and
 *   NSD send).
 * - A client outside the allowed address ranges: REFUSED.
 * - With `requireKey`, a request not signed with one of the policy's keys; without it, one signed
 *   with a key the policy does not list: REFUSED. (A signature that does not verify never gets
 *   here: the listener answered NOTAUTH.)
 * - IXFR without the SOA of the client's version in its authority section: FORMERR (RFC 1995
 *   §3). Over UDP an IXFR is then answered (below); nothing further applies to it.
 * - A signed request whose MAC was seen in the last 2 × 300 s: REFUSED. TSIG alone lets a
 *   captured request be replayed within its time window (RFC 8945 §5.2.3); the per-key rule of
 *   "time signed never going back" is not used, as several secondaries may share a key with
 *   clocks some seconds apart.
 * - At most `transfersPerClient` transfers at once per client (an IPv4 address or an IPv6 /64,
 *   `clientKeyOf`) and `maxTransfers` in all; a further one is REFUSED until one ends, so
 *   clients cannot hold many copies of a zone in the server's send buffers.
 *
 * What is sent:
 * - AXFR, over TCP only (RFC 5936 §4.2: the UDP and DoH listeners never pass it here): the zone
 *   from `store.streamZone`, one snapshot, SOA first and again last (RFC 5936 §2.2), read batch by
 *   batch and cut into messages as the listener writes them, so the zone is never held whole and
 *   a slow reader holds the reading up (TCP backpressure, `tcp-server.ts`). The zone is sent as
 *   stored: the same records IXFR's changes are taken against. (A mapping that has expired is
 *   dropped from the store by a journaled write, `resign`, and so from secondaries by IXFR.)
 * - IXFR over TCP: a client serial equal to or newer than the zone's (RFC 1982) gets the current
 *   SOA alone (RFC 1995 §2); otherwise the changes since it from `store.journalSince` — the new
 *   SOA, each change as old SOA, deleted records, new SOA, added records, then the new SOA again
 *   (§4) — or, when the journal does not reach back that far, the whole zone AXFR-style (§4).
 * - IXFR over UDP: the current SOA alone, whatever the client's serial. RFC 1995 §2 allows it
 *   ("the query is responded to with a single SOA record of the server's current version to
 *   inform the client that a TCP query should be initiated"); answering changes over UDP would
 *   let a forged source address reflect them, and secondaries ask over TCP anyway.
 *
 * Each message is at most {@link MAX_TRANSFER_MESSAGE_OCTETS} with room left for the TSIG record
 * the listener appends when the request was signed, and is a response to the query with AA set,
 * the question in the first only (RFC 5936 §2.2.1).
 *
 * Worked example: a zone of 100,000 CSIs (about 400,000 records with RRSIGs, 200 octets each)
 * is about 1,250 messages of 64 KiB; the DP reads it `STREAM_BATCH_RECORDS` at a time. A
 * publish then bumps the serial from 41 to 42; a secondary at 41 asks IXFR and gets
 * `SOA42 SOA41 (the old MAP RRset and its RRSIG) SOA42 (the new ones, and the NSEC3 records
 * that changed) SOA42`: one message.
 */

/** Largest message of a transfer: the 16-bit length of DNS over TCP (RFC 1035 §4.2.2). */
export const MAX_TRANSFER_MESSAGE_OCTETS = MAX_MESSAGE_OCTETS;

/** Default transfers one client may have running at once (config `transfer.transfersPerClient`). */
export const TRANSFERS_PER_CLIENT = 1;

/**
 * Default transfers running at once in all (config `transfer.maxTransfers`): a primary feeds a
 * handful of secondaries; each transfer holds a snapshot of the store open and a socket's buffers.
 */
export const MAX_TRANSFERS = 16;

/**
 * Signed transfer requests remembered, to refuse one seen before (a replay). Requests older than
 * twice {@link TSIG_FUDGE_SECONDS} are forgotten: verification refuses them anyway (BADTIME).
 */
export const TRANSFER_REPLAY_ENTRIES = 4096;

/** Who may transfer which zones. */
export interface TransferPolicy {
  /** Zones offered, by origin. */
  readonly zones: readonly string[];
  /**
   * Address ranges (CIDR: `192.0.2.0/24`, `2001:db8::/32`, or one address) allowed to
   * transfer; when absent, every address may.
   */
  readonly allow?: readonly string[];
  /** Names of the TSIG keys a transfer may be signed with; absent: none. */
  readonly keys?: readonly string[];
  /** Whether a transfer must be signed with one of `keys`; default: whether there are keys. */
  readonly requireKey?: boolean;
  /** Default {@link TRANSFERS_PER_CLIENT}. */
  readonly transfersPerClient?: number;
  /** Default {@link MAX_TRANSFERS}. */
  readonly maxTransfers?: number;
}

/** What a transfer handler uses besides its store and policy. */
export interface TransferComponents {
  /** The server's clock: replays are remembered for a time. */
  readonly now?: Clock;
  readonly log?: Logger;
  /**
   * Called once per transfer request with how it went (`ok`, `refused`, or `aborted`: cut off
   * midway) and what was or would have been sent ({@link TransferKind}).
   */
  readonly onTransfer?: (outcome: TransferOutcome, kind: TransferKind) => void;
}

/** How one transfer went, for metrics. */
export type TransferOutcome = 'ok' | 'refused' | 'aborted';

/**
 * What a transfer sent: `axfr` (the zone, asked by AXFR), `ixfr` (changes), `ixfr-full` (the
 * zone, asked by IXFR: the journal did not reach back), `ixfr-current` (the SOA alone: nothing
 * newer, or asked over UDP). A refusal carries `axfr` or `ixfr`, the type asked.
 */
export type TransferKind = 'axfr' | 'ixfr' | 'ixfr-full' | 'ixfr-current';

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

/** Creates the AXFR and IXFR handler of a server over `store` (for its TCP and UDP listeners). */
export function createTransferHandler(
  store: DiscoveryStore,
  policy: TransferPolicy,
  components: TransferComponents = {},
): TransferHandler {
  const zones = new Set(policy.zones.map((zone) => canonicalName(zone)));
  const ranges = policy.allow === undefined ? undefined : addressRanges(policy.allow);
  const keys = new Set((policy.keys ?? []).map((key) => canonicalName(key)));
  const requireKey = policy.requireKey ?? keys.size > 0;
  const perClient = policy.transfersPerClient ?? TRANSFERS_PER_CLIENT;
  const maxTransfers = policy.maxTransfers ?? MAX_TRANSFERS;
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const running = new Map<string, number>();
  let total = 0;
  const seen = createReplayMemory(now);

  return (query: Message, context: QueryContext): TransferResponse => {
    const question = query.questions[0];
    const zone = question === undefined ? undefined : canonicalName(question.name);
    const asked: TransferKind = question?.type === 'IXFR' ? 'ixfr' : 'axfr';
    const refuse = (why: string, rcode: 'REFUSED' | 'FORMERR' = 'REFUSED'): Message => {
      // Design §10: the zone and why, never the client's address.
      log.info('transfer-refused', { zone, type: asked, why });
      components.onTransfer?.('refused', asked);
      return respondError(query, rcode);
    };
    if (question === undefined || zone === undefined || question.class !== 'IN') {
      return refuse('class');
    }
    if (!zones.has(zone) || !store.listZones().includes(zone)) return refuse('zone-not-offered');
    if (ranges !== undefined && !allowed(ranges, context.remoteAddress)) {
      return refuse('client-not-allowed');
    }
    const key = context.tsig?.key.name;
    if (key === undefined ? requireKey : !keys.has(key)) {
      return refuse(key === undefined ? 'no-key' : 'key-not-allowed');
    }
    let from: number | undefined;
    if (asked === 'ixfr') {
      from = clientSerial(query, zone);
      if (from === undefined) return refuse('no-soa', 'FORMERR');
      // RFC 1995 §2: over UDP, the current SOA tells the client to ask over TCP.
      if (context.transport !== 'tcp') {
        const soa = currentSoa(store, zone);
        log.info('transfer-done', { zone, type: 'ixfr-current', serial: soa.data.serial });
        components.onTransfer?.('ok', 'ixfr-current');
        return withAnswers(query, [soa]);
      }
    }
    // Over UDP only the SOA goes out (above): the same datagram sent again is a retransmission.
    if (context.tsig !== undefined && !seen.remember(context.tsig.mac)) return refuse('replay');
    const client = clientKeyOf(context.remoteAddress);
    const active = running.get(client) ?? 0;
    if (active >= perClient) return refuse('client-busy');
    if (total >= maxTransfers) return refuse('server-busy');
    running.set(client, active + 1);
    total++;
    const release = (): void => {
      total--;
      const left = (running.get(client) ?? 1) - 1;
      if (left <= 0) running.delete(client);
      else running.set(client, left);
    };
    const room = context.tsig === undefined ? 0 : tsigRecordOctets(context.tsig.key);
    return transferMessages(
      query,
      room,
      release,
      async () => {
        if (from === undefined) return { kind: 'axfr', records: wholeZone(store, zone) };
        return changesSince(store, zone, from);
      },
      (outcome, plan, stats) => {
        log.info(outcome === 'ok' ? 'transfer-done' : 'transfer-aborted', {
          zone,
          type: plan?.kind ?? asked,
          ...(from === undefined ? {} : { from }),
          ...(plan?.serial === undefined ? {} : { serial: plan.serial }),
          records: stats.records,
          messages: stats.messages,
        });
        components.onTransfer?.(outcome, plan?.kind ?? asked);
      },
    );
  };
}

/** What one transfer sends: its kind, its serial once known, and its records in batches. */
interface TransferPlan {
  readonly kind: TransferKind;
  readonly records: AsyncIterable<readonly ResourceRecord[]>;
  serial?: number;
}

/** The serial of the SOA in the authority section of an IXFR query (RFC 1995 §3). */
function clientSerial(query: Message, zone: string): number | undefined {
  const soa = query.authorities.find(
    (rr): rr is RecordOf<'SOA'> => rr.type === 'SOA' && canonicalName(rr.name) === zone,
  );
  return query.authorities.length === 1 ? soa?.data.serial : undefined;
}

function currentSoa(store: DiscoveryStore, zone: string): RecordOf<'SOA'> {
  const soa = store.readRRset(zone, zone, 'SOA')[0];
  if (soa?.type !== 'SOA') throw new TypeError(`zone ${zone} has no SOA`);
  return soa;
}

/**
 * The zone as `streamZone` gives it, its SOA moved first and sent again at the end (RFC 5936
 * §2.2). The apex's records come first in canonical order (RFC 4034 §6.1), the SOA among them
 * (after NS, by type code): those before it are held until it comes, no more.
 */
async function* wholeZone(
  store: DiscoveryStore,
  zone: string,
): AsyncGenerator<readonly ResourceRecord[]> {
  let soa: ResourceRecord | undefined;
  const before: ResourceRecord[] = [];
  for await (const batch of store.streamZone(zone)) {
    if (soa !== undefined) {
      yield batch;
      continue;
    }
    const at = batch.findIndex((rr) => rr.type === 'SOA' && canonicalName(rr.name) === zone);
    const head = at < 0 ? batch : batch.slice(0, at);
    if (head.some((rr) => canonicalName(rr.name) !== zone)) {
      throw new TypeError(`the zone ${zone} does not open with its apex`);
    }
    before.push(...head);
    if (at < 0) continue;
    soa = batch[at] as ResourceRecord;
    yield [soa, ...before, ...batch.slice(at + 1)];
  }
  if (soa === undefined) throw new TypeError(`the zone ${zone} has no SOA`);
  yield [soa];
}

/** The plan of an IXFR from serial `from` (RFC 1995 §2, §4), as the module comment says. */
async function changesSince(
  store: DiscoveryStore,
  zone: string,
  from: number,
): Promise<TransferPlan> {
  const current = currentSoa(store, zone);
  const order = compareSerials(from, current.data.serial);
  if (order === 0 || order === 1) {
    return { kind: 'ixfr-current', serial: current.data.serial, records: once([current]) };
  }
  const entries = await store.journalSince(zone, from);
  if (entries !== undefined && entries.length === 0) {
    return { kind: 'ixfr-current', serial: current.data.serial, records: once([current]) };
  }
  const soa = entries === undefined ? undefined : chainEnd(entries, from);
  if (entries === undefined || soa === undefined) {
    return { kind: 'ixfr-full', records: wholeZone(store, zone) };
  }
  return { kind: 'ixfr', serial: soa.data.serial, records: journalRecords(entries, soa) };
}

/**
 * The SOA the entries end at, when they form one chain from `from` (each `from` the `to` of the
 * one before, each opening with its SOAs as RFC 1995 §4 needs them); else undefined, and the
 * whole zone is sent rather than changes a secondary could not apply.
 */
function chainEnd(entries: readonly JournalEntry[], from: number): RecordOf<'SOA'> | undefined {
  let at = from;
  let soa: RecordOf<'SOA'> | undefined;
  for (const entry of entries) {
    const old = entry.deleted[0];
    const next = entry.added[0];
    if (entry.from !== at || old?.type !== 'SOA' || next?.type !== 'SOA') return undefined;
    if (old.data.serial !== entry.from || next.data.serial !== entry.to) return undefined;
    at = entry.to;
    soa = next;
  }
  return soa;
}

async function* journalRecords(
  entries: readonly JournalEntry[],
  soa: RecordOf<'SOA'>,
): AsyncGenerator<readonly ResourceRecord[]> {
  yield [soa];
  for (const entry of entries) {
    yield entry.deleted;
    yield entry.added;
  }
  yield [soa];
}

async function* once(
  records: readonly ResourceRecord[],
): AsyncGenerator<readonly ResourceRecord[]> {
  yield records;
}

/** A response to `query` with AA set and `answers`. */
function withAnswers(query: Message, answers: ResourceRecord[]): Message {
  const message = respondError(query, 'NOERROR');
  message.flags.aa = true;
  message.answers = answers;
  return message;
}

/**
 * The messages of one transfer, planned once the iteration starts (`plan`); `release` runs once
 * when the iteration ends, completed or cut off, and `report` says which, with what was sent.
 */
async function* transferMessages(
  query: Message,
  room: number,
  release: () => void,
  plan: () => Promise<TransferPlan>,
  report: (
    outcome: TransferOutcome,
    plan: TransferPlan | undefined,
    stats: { records: number; messages: number },
  ) => void,
): AsyncGenerator<Message> {
  let completed = false;
  let planned: TransferPlan | undefined;
  const stats = { records: 0, messages: 0 };
  try {
    planned = await plan();
    const build = (answers: ResourceRecord[], first: boolean): Message => {
      const message = withAnswers(query, answers);
      // RFC 5936 §2.2.1: the question only in the first message.
      if (!first) message.questions = [];
      return message;
    };
    for await (const message of packMessages(build, planned.records, room)) {
      stats.messages++;
      stats.records += message.answers.length;
      const soa = message.answers[0];
      if (planned.serial === undefined && soa?.type === 'SOA') planned.serial = soa.data.serial;
      yield message;
    }
    completed = true;
  } finally {
    release();
    report(completed ? 'ok' : 'aborted', planned, stats);
  }
}

/** Records in the first message of a transfer, before its size says how many fit. */
const FIRST_MESSAGE_RECORDS = 64;

/**
 * Batches of records cut into consecutive messages (`build` makes one of its records), each as
 * full as {@link MAX_TRANSFER_MESSAGE_OCTETS} less `room` (the TSIG record) allows and within the
 * codec's {@link MAX_RECORDS_PER_MESSAGE}. Each message is encoded once to know its size: the
 * number of records of the next one is taken from it (records of one zone are of similar
 * sizes), and a message that came out too large is cut down and encoded again. At most one
 * message's records are held, besides the batch being read.
 *
 * Worked example: 64 records encode to 12,000 octets, so the next message takes
 * 64 × 65,535 × 0.95 / 12,000 ≈ 332; if those make 66,000 octets, it is cut to 310 and sent.
 */
async function* packMessages(
  build: (answers: ResourceRecord[], first: boolean) => Message,
  batches: AsyncIterable<readonly ResourceRecord[]>,
  room: number,
): AsyncGenerator<Message> {
  const limit = MAX_TRANSFER_MESSAGE_OCTETS - room;
  // Room for the question, and an OPT record besides the answers.
  const most = MAX_RECORDS_PER_MESSAGE - 2;
  let pending: ResourceRecord[] = [];
  let at = 0;
  let guess = FIRST_MESSAGE_RECORDS;
  let first = true;
  const next = (): Message => {
    let n = Math.min(guess, pending.length - at, most);
    for (;;) {
      const message = build(pending.slice(at, at + n), first);
      const octets = encodedOctets(message);
      if (octets !== undefined && octets <= limit) {
        at += n;
        first = false;
        guess = Math.max(1, Math.min(most, Math.floor((n * limit * 0.95) / octets)));
        return message;
      }
      if (n === 1) throw new TypeError('a record that does not fit a message of its own');
      n = Math.max(1, octets === undefined ? n >> 1 : Math.floor((n * limit * 0.95) / octets));
    }
  };
  for await (const batch of batches) {
    if (at > 0) {
      pending = pending.slice(at);
      at = 0;
    }
    pending.push(...batch);
    while (pending.length - at >= guess) yield next();
  }
  while (pending.length - at > 0) yield next();
}

/** The octets of `message` encoded, or undefined when it is over the codec's limit. */
function encodedOctets(message: Message): number | undefined {
  try {
    return encodeMessage(message).length;
  } catch (error) {
    if (error instanceof WireError && error.code === 'ERR_WIRE_TOO_LARGE') return undefined;
    throw error;
  }
}

/** Recent MACs of signed transfer requests, to refuse a replay ({@link TRANSFER_REPLAY_ENTRIES}). */
function createReplayMemory(now: Clock): { remember(mac: Uint8Array): boolean } {
  const macs = new Map<string, number>();
  const window = 2 * TSIG_FUDGE_SECONDS;
  return {
    /** Whether `mac` is new (then remembered); false for one seen within the window. */
    remember(mac) {
      const t = now();
      for (const [old, at] of macs) {
        if (t - at <= window && macs.size < TRANSFER_REPLAY_ENTRIES) break;
        macs.delete(old);
      }
      const id = Buffer.from(mac).toString('base64');
      if (macs.has(id)) return false;
      macs.set(id, t);
      return true;
    },
  };
}
