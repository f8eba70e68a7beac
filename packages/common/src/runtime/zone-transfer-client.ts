/**
 * Receiving a whole zone by AXFR over TCP (RFC 5936): what a resolver that keeps a local copy of
 * the root's zone (RFC 8806) uses, and what a secondary would. One query, then length-prefixed
 * messages (RFC 1035 §4.2.2) whose answer sections together hold the zone, SOA first and the same
 * SOA again last (RFC 5936 §2.2).
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
import { decodeMessage, encodeMessage } from '../protocol/wire.js';
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

/**
 * Transfers zone `zone` from `server` by AXFR over a new TCP connection. Rejects with
 * {@link ZoneTransferError}; the connection is closed whatever the outcome.
 */
export function transferZone(
  server: ServerAddress,
  zone: string,
  options: ZoneTransferOptions = {},
): Promise<ZoneTransferResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TRANSFER_TIMEOUT_MS;
  const maxRecords = options.maxRecords ?? DEFAULT_TRANSFER_MAX_RECORDS;
  const maxOctets = options.maxOctets ?? DEFAULT_TRANSFER_MAX_OCTETS;
  const apex = canonicalName(zone);
  const where = `${server.host}:${server.port}`;
  const query = buildQuery(apex, 'AXFR');
  const wire = encodeMessage(query);
  return new Promise<ZoneTransferResult>((resolve, reject) => {
    const records: ResourceRecord[] = [];
    let soa: RecordOf<'SOA'> | undefined;
    let messages = 0;
    let octets = 0;
    const reader = new TcpMessageReader();
    let settled = false;
    const socket = connectAndSend(server, wire);
    const finish = (result: ZoneTransferResult | ZoneTransferError): void => {
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
          `AXFR of ${apex} from ${where}: ${message}`,
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

    /** Takes one message; returns true once the transfer is complete. */
    const take = (bytes: Uint8Array): boolean => {
      let message: Message;
      try {
        message = decodeMessage(bytes);
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
        const rr = message.answers[i] as ResourceRecord;
        if (records.length + 1 > maxRecords) {
          fail('ERR_TRANSFER_TOO_LARGE', `more than ${maxRecords} records`);
          return true;
        }
        const apexSoa = rr.type === 'SOA' && namesEqual(rr.name, apex);
        if (soa === undefined) {
          if (!apexSoa) {
            fail(
              'ERR_TRANSFER_MALFORMED',
              `the first record is ${rr.type}, not the SOA of ${apex}`,
            );
            return true;
          }
          soa = rr;
          records.push(rr);
          continue;
        }
        if (apexSoa) {
          // RFC 5936 §2.2: the closing SOA ends the transfer, in the last place of its message,
          // and is the opening one again.
          if (i !== message.answers.length - 1) {
            fail('ERR_TRANSFER_MALFORMED', 'records follow the closing SOA');
          } else if (rr.data.serial !== soa.data.serial) {
            fail(
              'ERR_TRANSFER_MALFORMED',
              `the closing SOA has serial ${rr.data.serial}, the opening one ${soa.data.serial}`,
            );
          } else {
            finish({ records, soa, messages, octets });
          }
          return true;
        }
        records.push(rr);
      }
      return false;
    };

    socket.on('data', (chunk: Buffer) => {
      octets += chunk.length;
      if (octets > maxOctets)
        return fail('ERR_TRANSFER_TOO_LARGE', `more than ${maxOctets} octets`);
      reader.push(chunk);
      while (!settled) {
        const bytes = reader.next();
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
