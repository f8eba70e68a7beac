/**
 * Receiving a zone by AXFR (RFC 5936) or its changes by IXFR (RFC 1995) over TCP: what a resolver
 * that keeps a local copy of the root's zone (RFC 8806) uses, what the tests and the bench check
 * a DP's transfers with, and what a secondary would. One query, then length-prefixed messages
 * (RFC 1035 §4.2.2) whose answer sections together hold the zone, SOA first and the same SOA
 * again last (RFC 5936 §2.2), or, for IXFR, the new SOA, each change as the old SOA, the records
 * deleted, the new SOA, the records added, and the new SOA again (RFC 1995 §4).
 *
 * With a TSIG key (RFC 8945), the query is signed and every message of the answer must verify:
 * the first over the query's MAC, each later one over the MAC before it (or be one of at most 99
 * unsigned messages, covered by the next signed one); the last must be signed.
 *
 * A transfer is bounded three ways, each a default below and an option, so that a server that
 * drip-feeds a zone or sends one without end is cut off: the time from connecting to the final
 * SOA, the records, and the octets received. Nothing is checked here beyond the framing and the
 * transfer's own rules; what the records say (signatures, ZONEMD) is the caller's to verify.
 *
 * Worked example: `transferZone({ host: '127.0.0.1', port: 5300 }, 'mimi.arpa')` against a root
 * holding SOA, NS, DNSKEY, ZONEMD and two delegations receives one message
 * `SOA … NS … A … SOA` and resolves with every record but the closing SOA.
 */
import { MimiError } from '../protocol/errors.js';
import { canonicalName, namesEqual } from '../protocol/names.js';
import type { Message, RecordOf, ResourceRecord } from '../protocol/records.js';
import { compareSerials } from '../protocol/serial.js';
import {
  createTsigResponseVerifier,
  signMessage,
  type TsigKey,
  type TsigResponseVerifier,
} from '../protocol/tsig.js';
import { decodeMessage, encodeMessage } from '../protocol/wire.js';
import { systemClock, type Clock } from './clock.js';
import { TcpMessageReader, buildQuery, connectAndSend, type ServerAddress } from './dns-client.js';

/** Default time for a whole transfer, from connecting to the final SOA. */
export const DEFAULT_TRANSFER_TIMEOUT_MS = 30_000;
/** Default most records a transfer may bring (the final SOA included). */
export const DEFAULT_TRANSFER_MAX_RECORDS = 1_000_000;
/** Default most octets a transfer may bring, framing included: 256 MiB. */
export const DEFAULT_TRANSFER_MAX_OCTETS = 256 * 1024 * 1024;

/** Every code a {@link ZoneTransferError} can carry. */
export const ZONE_TRANSFER_ERROR_CODES = Object.freeze([
  /** The connection could not be made, failed, or closed before the final SOA. */
  'ERR_TRANSFER_CONNECTION',
  /** The transfer did not end within its time. */
  'ERR_TRANSFER_TIMEOUT',
  /** The server answered with an rcode other than NOERROR (REFUSED, NOTAUTH, …). */
  'ERR_TRANSFER_REFUSED',
  /** More records or octets than allowed. */
  'ERR_TRANSFER_TOO_LARGE',
  /** A message that does not decode, does not answer the query, or breaks RFC 5936 §2.2. */
  'ERR_TRANSFER_MALFORMED',
  /** With a TSIG key: a message that is not signed as RFC 8945 §5.3 requires, or not rightly. */
  'ERR_TRANSFER_TSIG',
] as const);

/** A code from {@link ZONE_TRANSFER_ERROR_CODES}. */
export type ZoneTransferErrorCode = (typeof ZONE_TRANSFER_ERROR_CODES)[number];

/** A zone transfer that did not complete; `code` says why. */
export class ZoneTransferError extends MimiError<ZoneTransferErrorCode> {}

/** Options of {@link transferZone}. */
export interface ZoneTransferOptions {
  /** Default {@link DEFAULT_TRANSFER_TIMEOUT_MS}. */
  timeoutMs?: number;
  /** Default {@link DEFAULT_TRANSFER_MAX_RECORDS}. */
  maxRecords?: number;
  /** Default {@link DEFAULT_TRANSFER_MAX_OCTETS}. */
  maxOctets?: number;
  /** Aborts the transfer (`ERR_TRANSFER_CONNECTION`), e.g. when its owner closes. */
  signal?: AbortSignal;
  /** Signs the query with this key and verifies every message with it (RFC 8945). */
  tsig?: TsigKey;
  /** The clock of signing and verifying; default `systemClock`. */
  now?: Clock;
  /**
   * Takes the zone's records as they arrive (AXFR, or an IXFR answered with the whole zone),
   * opening SOA first, instead of keeping them: the result's `records` is then empty, and a
   * transfer of any size takes the memory of one message.
   */
  onRecord?: (record: ResourceRecord) => void;
}

/** A completed transfer. */
export interface ZoneTransferResult {
  /** The zone's records as received, the opening SOA first, the closing SOA left out. */
  readonly records: ResourceRecord[];
  /** The zone's SOA. */
  readonly soa: RecordOf<'SOA'>;
  readonly messages: number;
  /** Octets received, framing included. */
  readonly octets: number;
}

/** One change of serial received by IXFR (RFC 1995 §4). */
export interface ZoneDelta {
  readonly from: number;
  readonly to: number;
  /** The SOA of `from` first, then the records the change deleted. */
  readonly deleted: ResourceRecord[];
  /** The SOA of `to` first, then the records the change added. */
  readonly added: ResourceRecord[];
}

/** What an IXFR brought (RFC 1995 §2, §4). */
export type IncrementalTransfer =
  /** The server's serial is not newer than the one asked from: its SOA alone. */
  | { readonly kind: 'current'; readonly soa: RecordOf<'SOA'> }
  /** The changes from the serial asked from to the server's, oldest first. */
  | { readonly kind: 'incremental'; readonly soa: RecordOf<'SOA'>; readonly deltas: ZoneDelta[] }
  /** The whole zone (the server's journal does not reach back), as an AXFR gives it. */
  | { readonly kind: 'full'; readonly soa: RecordOf<'SOA'>; readonly records: ResourceRecord[] };

/** How a server answered an IXFR, and the messages and octets (framing included) it took. */
export type IncrementalTransferResult = IncrementalTransfer & {
  readonly messages: number;
  readonly octets: number;
};

/**
 * Transfers zone `zone` from `server` by AXFR over a new TCP connection. Rejects with
 * {@link ZoneTransferError}; the connection is closed whatever the outcome.
 */
export async function transferZone(
  server: ServerAddress,
  zone: string,
  options: ZoneTransferOptions = {},
): Promise<ZoneTransferResult> {
  const apex = canonicalName(zone);
  const reader = wholeZoneReader(apex, undefined, options.onRecord);
  const { messages, octets } = await receive(server, buildQuery(apex, 'AXFR'), options, reader);
  const done = reader.result();
  return { ...done, messages, octets };
}

/**
 * Asks `server` for the changes of zone `zone` since `serial` by IXFR over a new TCP connection
 * (RFC 1995): resolves with the changes, the whole zone, or the SOA alone, as the server
 * answered. Rejects with {@link ZoneTransferError}; the connection is closed whatever the
 * outcome.
 */
export async function transferZoneChanges(
  server: ServerAddress,
  zone: string,
  serial: number,
  options: ZoneTransferOptions = {},
): Promise<IncrementalTransferResult> {
  const apex = canonicalName(zone);
  const query = buildQuery(apex, 'IXFR');
  // RFC 1995 §3: the authority section holds the SOA of the version the client has; only its
  // serial matters to the server.
  query.authorities = [
    {
      name: apex,
      type: 'SOA',
      class: 'IN',
      ttl: 0,
      data: {
        mname: '.',
        rname: '.',
        serial: serial >>> 0,
        refresh: 0,
        retry: 0,
        expire: 0,
        minimum: 0,
      },
    },
  ];
  const reader = incrementalReader(apex, serial >>> 0, options.onRecord);
  const { messages, octets } = await receive(server, query, options, reader);
  return { ...reader.result(), messages, octets };
}

/** What a transfer's records go to: each record in order, then the end of each message. */
interface TransferReader<R> {
  /** Takes one record; returns why the transfer is malformed, or undefined. */
  record(rr: ResourceRecord, last: boolean): string | undefined;
  /** Called after each message; whether the transfer is complete. */
  complete(): boolean;
  /** What was received, once complete. */
  result(): R;
}

function isApexSoa(rr: ResourceRecord, apex: string): rr is RecordOf<'SOA'> {
  return rr.type === 'SOA' && namesEqual(rr.name, apex);
}

/** AXFR, or an IXFR answered with the whole zone: SOA, the records, the same SOA last. */
function wholeZoneReader(
  apex: string,
  opening?: RecordOf<'SOA'>,
  sink?: (record: ResourceRecord) => void,
): TransferReader<{ records: ResourceRecord[]; soa: RecordOf<'SOA'> }> {
  const records: ResourceRecord[] = [];
  const keep = sink ?? ((rr: ResourceRecord) => records.push(rr));
  if (opening !== undefined) keep(opening);
  let soa = opening;
  let done = false;
  return {
    record(rr, last) {
      if (soa === undefined) {
        if (!isApexSoa(rr, apex)) return `the first record is ${rr.type}, not the SOA of ${apex}`;
        soa = rr;
        keep(rr);
        return undefined;
      }
      if (isApexSoa(rr, apex)) {
        // RFC 5936 §2.2: the closing SOA ends the transfer, in the last place of its message,
        // and is the opening one again.
        if (!last) return 'records follow the closing SOA';
        if (rr.data.serial !== soa.data.serial) {
          return `the closing SOA has serial ${rr.data.serial}, the opening one ${soa.data.serial}`;
        }
        done = true;
        return undefined;
      }
      keep(rr);
      return undefined;
    },
    complete: () => done,
    result() {
      if (soa === undefined) throw new TypeError('the transfer is not complete');
      return { records, soa };
    },
  };
}

/**
 * IXFR (RFC 1995 §4): the new SOA; then either nothing more (the SOA alone: nothing newer), the
 * whole zone as AXFR-style, or changes, each `old SOA, deleted…, new SOA, added…`, each starting
 * where the one before ended, the first at `serial`; then the new SOA again.
 *
 * Worked example, from 7 to 9: `SOA9 SOA7 (deleted) SOA8 (added) SOA8 (deleted) SOA9 (added) SOA9`.
 */
function incrementalReader(
  apex: string,
  serial: number,
  sink?: (record: ResourceRecord) => void,
): TransferReader<IncrementalTransfer> {
  let soa: RecordOf<'SOA'> | undefined;
  let seen = 0;
  let whole: ReturnType<typeof wholeZoneReader> | undefined;
  const deltas: ZoneDelta[] = [];
  let delta:
    { from: RecordOf<'SOA'>; deleted: ResourceRecord[]; added?: ResourceRecord[] } | undefined;
  let done = false;
  const close = (): string | undefined => {
    if (delta?.added === undefined) return 'a change ends without its new SOA';
    const to = delta.added[0] as RecordOf<'SOA'>;
    deltas.push({
      from: delta.from.data.serial,
      to: to.data.serial,
      deleted: delta.deleted,
      added: delta.added,
    });
    delta = undefined;
    return undefined;
  };
  return {
    record(rr, last) {
      seen++;
      if (soa === undefined) {
        if (!isApexSoa(rr, apex)) return `the first record is ${rr.type}, not the SOA of ${apex}`;
        soa = rr;
        return undefined;
      }
      if (whole !== undefined) return whole.record(rr, last);
      if (seen === 2) {
        if (!isApexSoa(rr, apex)) {
          whole = wholeZoneReader(apex, soa, sink);
          return whole.record(rr, last);
        }
        if (rr.data.serial === soa.data.serial) {
          // The zone is its SOA alone, sent AXFR-style.
          whole = wholeZoneReader(apex, soa, sink);
          return whole.record(rr, last);
        }
        if (rr.data.serial !== serial) {
          return `the first change starts at serial ${rr.data.serial}, not ${serial}`;
        }
        delta = { from: rr, deleted: [rr] };
        return undefined;
      }
      if (delta === undefined) return 'records after the closing SOA';
      if (!isApexSoa(rr, apex)) {
        (delta.added ?? delta.deleted).push(rr);
        return undefined;
      }
      if (delta.added === undefined) {
        delta.added = [rr];
        return undefined;
      }
      const previous = delta.added[0] as RecordOf<'SOA'>;
      const problem = close();
      if (problem !== undefined) return problem;
      if (rr.data.serial === soa.data.serial && previous.data.serial === soa.data.serial) {
        if (!last) return 'records follow the closing SOA';
        done = true;
        return undefined;
      }
      if (rr.data.serial !== previous.data.serial) {
        return `a change starts at serial ${rr.data.serial}, not where the one before ended (${previous.data.serial})`;
      }
      delta = { from: rr, deleted: [rr] };
      return undefined;
    },
    complete() {
      if (whole !== undefined) return whole.complete();
      // RFC 1995 §2: the SOA alone, not newer than the client's, says there is nothing to send.
      if (
        !done &&
        seen === 1 &&
        soa !== undefined &&
        compareSerials(soa.data.serial, serial) !== 1
      ) {
        done = true;
      }
      return done;
    },
    result() {
      if (soa === undefined) throw new TypeError('the transfer is not complete');
      if (whole !== undefined) return { kind: 'full', ...whole.result() };
      if (seen === 1) return { kind: 'current', soa };
      return { kind: 'incremental', soa, deltas };
    },
  };
}

/**
 * Sends `query` over a new TCP connection and feeds the records of the answer to `reader` until
 * it is complete, within the options' bounds, verifying TSIG when a key is given.
 */
function receive<R>(
  server: ServerAddress,
  query: Message,
  options: ZoneTransferOptions,
  reader: TransferReader<R>,
): Promise<{ messages: number; octets: number }> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TRANSFER_TIMEOUT_MS;
  const maxRecords = options.maxRecords ?? DEFAULT_TRANSFER_MAX_RECORDS;
  const maxOctets = options.maxOctets ?? DEFAULT_TRANSFER_MAX_OCTETS;
  const now = options.now ?? systemClock;
  const question = query.questions[0];
  const what = `${question?.type ?? 'transfer'} of ${question?.name ?? ''}`;
  const where = `${server.host}:${server.port}`;
  let wire = encodeMessage(query);
  let verifier: TsigResponseVerifier | undefined;
  if (options.tsig !== undefined) {
    const signed = signMessage(wire, options.tsig, { now: now() });
    wire = signed.wire;
    verifier = createTsigResponseVerifier(options.tsig, signed.mac);
  }
  return new Promise((resolve, reject) => {
    let records = 0;
    let messages = 0;
    let octets = 0;
    let lastSigned = false;
    const frames = new TcpMessageReader();
    let settled = false;
    const socket = connectAndSend(server, wire);
    const finish = (result: { messages: number; octets: number } | ZoneTransferError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (result instanceof ZoneTransferError) reject(result);
      else resolve(result);
    };
    const fail = (code: ZoneTransferErrorCode, message: string, cause?: unknown): void =>
      finish(
        new ZoneTransferError(
          code,
          `${what} from ${where}: ${message}`,
          cause === undefined ? undefined : { cause },
        ),
      );
    const timer = setTimeout(
      () => fail('ERR_TRANSFER_TIMEOUT', `not complete within ${timeoutMs} ms`),
      timeoutMs,
    );
    const onAbort = (): void => fail('ERR_TRANSFER_CONNECTION', 'aborted');
    if (options.signal?.aborted === true) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });

    /** Takes one message; returns true once the transfer has ended, complete or failed. */
    const take = (bytes: Uint8Array): boolean => {
      let plain = bytes;
      if (verifier !== undefined) {
        const check = verifier.verify(bytes, now());
        if (check.kind === 'failed') {
          // An error answer (NOTAUTH with BADKEY, REFUSED unsigned) says more than its TSIG.
          const rcode = rcodeOf(bytes);
          fail(
            rcode !== undefined && rcode !== 'NOERROR'
              ? 'ERR_TRANSFER_REFUSED'
              : 'ERR_TRANSFER_TSIG',
            rcode !== undefined && rcode !== 'NOERROR'
              ? `the server answered ${rcode} (${check.reason})`
              : check.reason,
          );
          return true;
        }
        lastSigned = check.kind === 'verified';
        plain = check.unsigned;
      }
      let message: Message;
      try {
        message = decodeMessage(plain);
      } catch (error) {
        fail('ERR_TRANSFER_MALFORMED', 'a message does not decode', error);
        return true;
      }
      messages++;
      const problem = messageProblem(query, message, messages === 1);
      if (problem !== undefined) {
        fail(problem.code, problem.message);
        return true;
      }
      for (let i = 0; i < message.answers.length; i++) {
        if (++records > maxRecords) {
          fail('ERR_TRANSFER_TOO_LARGE', `more than ${maxRecords} records`);
          return true;
        }
        const malformed = reader.record(
          message.answers[i] as ResourceRecord,
          i === message.answers.length - 1,
        );
        if (malformed !== undefined) {
          fail('ERR_TRANSFER_MALFORMED', malformed);
          return true;
        }
      }
      if (!reader.complete()) return false;
      // RFC 8945 §5.3.1: the last message of a signed answer is signed.
      if (verifier !== undefined && !lastSigned) {
        fail('ERR_TRANSFER_TSIG', 'the last message is not signed');
      } else {
        finish({ messages, octets });
      }
      return true;
    };

    socket.on('data', (chunk: Buffer) => {
      octets += chunk.length;
      if (octets > maxOctets)
        return fail('ERR_TRANSFER_TOO_LARGE', `more than ${maxOctets} octets`);
      frames.push(chunk);
      while (!settled) {
        const bytes = frames.next();
        if (bytes === undefined) break;
        if (typeof bytes === 'number') {
          return fail('ERR_TRANSFER_MALFORMED', `a message of ${bytes} octets`);
        }
        if (take(bytes)) return;
      }
    });
    socket.on('error', (error) => fail('ERR_TRANSFER_CONNECTION', error.message, error));
    socket.on('close', () =>
      fail('ERR_TRANSFER_CONNECTION', 'the connection closed before the closing SOA'),
    );
  });
}

/** The rcode of a message, or undefined when it does not decode. */
function rcodeOf(bytes: Uint8Array): Message['rcode'] | undefined {
  try {
    return decodeMessage(bytes).rcode;
  } catch {
    return undefined;
  }
}

/**
 * What is wrong with one message of the transfer, if anything: it must answer the query (QR,
 * the id, opcode QUERY; the question in the first message, none or the same in the others,
 * RFC 5936 §2.2.1), NOERROR, not truncated.
 */
function messageProblem(
  query: Message,
  message: Message,
  first: boolean,
): { code: ZoneTransferErrorCode; message: string } | undefined {
  const malformed = (why: string) => ({ code: 'ERR_TRANSFER_MALFORMED' as const, message: why });
  if (!message.flags.qr || message.id !== query.id || message.flags.opcode !== 0) {
    return malformed('a message does not answer the query');
  }
  const asked = query.questions[0];
  const echoed = message.questions[0];
  if (message.questions.length > 1 || (first && echoed === undefined)) {
    return malformed('a message does not carry the question');
  }
  if (
    echoed !== undefined &&
    asked !== undefined &&
    (!namesEqual(echoed.name, asked.name) || echoed.type !== asked.type)
  ) {
    return malformed(`a message answers ${echoed.name} ${echoed.type}`);
  }
  if (message.rcode !== 'NOERROR') {
    return { code: 'ERR_TRANSFER_REFUSED', message: `the server answered ${message.rcode}` };
  }
  if (message.flags.tc) return malformed('a message is truncated');
  return undefined;
}
