import { randomInt } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import {
  canonicalName,
  createTsigResponseVerifier,
  decodeMessage,
  encodeMessage,
  namesEqual,
  signMessage,
  silentLogger,
  systemClock,
  type Clock,
  type Logger,
  type Message,
  type RecordOf,
  type TsigKey,
  type TsigResponseVerifier,
} from '@mimi-discovery/common';
import type { DiscoveryStore } from '../store/store.js';

/**
 * NOTIFY (RFC 1996): telling a zone's secondaries that its serial changed, so that they ask for
 * the change (IXFR) at once instead of at their next SOA refresh.
 *
 * The sender watches the store rather than being called by writers: every
 * {@link NOTIFY_CHECK_INTERVAL_MS} it reads `store.generation()`, and when that moved, each
 * transferred zone's serial (`zoneInfo`). So a change made by another process on the same store
 * (the CLI on the LMDB directory, another front end over PostgreSQL) is announced too, and a
 * burst of writes between two checks is one NOTIFY.
 *
 * Per zone and secondary, at most one NOTIFY is outstanding (RFC 1996 §3.6, §4.8): it is sent
 * over UDP with opcode NOTIFY, AA, the question `<zone> IN SOA` and the new SOA in the answer
 * section (§3.7, a hint the secondary may use), signed with the secondary's TSIG key when it has
 * one (RFC 8945; the answer must then verify, else it is ignored as forged). It is sent again
 * after {@link NOTIFY_TIMEOUT_MS}, doubling each time, at most {@link NOTIFY_RETRIES} times
 * (§3.6: "a maximum of 5 retransmissions"), until a response comes from the secondary's address
 * and port with the same id and question. A serial that changes meanwhile supersedes it: the
 * outstanding NOTIFY is dropped and the new serial announced at once, retransmissions starting
 * over (a secondary that did not answer the old one, or was down, is told of the newest change
 * without waiting out the old one's backoff); so a burst of writes costs at most one NOTIFY per
 * check. A response other than NOERROR ends the exchange (the secondary refused: it is logged,
 * not retried).
 *
 * A NOTIFY sent to this server is answered NOTIMP by every listener (`respond.ts` of common: a
 * primary takes no NOTIFY).
 *
 * Worked example: 50 publishes within 200 ms on a zone with two secondaries: one check sees the
 * serial go from 10 to 60 and sends two NOTIFYs (serial 60), one to each; if the first secondary
 * does not answer, it gets the NOTIFY again after 2, 4, 8, 16 and 32 s, then the sender gives up
 * (`timeout`) and the secondary finds the change at its SOA refresh.
 */

/** Retransmissions of one NOTIFY without an answer (RFC 1996 §3.6; config `transfer.notifyRetries`). */
export const NOTIFY_RETRIES = 5;
/**
 * Wait for an answer before the first retransmission, doubled for each later one (config
 * `transfer.notifyTimeoutMs`). 2 s, doubling five times, spans about a minute, RFC 1996 §3.6's
 * 60 s interval, while a lost datagram costs a secondary 2 s, not 60.
 */
export const NOTIFY_TIMEOUT_MS = 2_000;
/** Most retransmissions allowed in config. */
export const MAX_NOTIFY_RETRIES = 10;
/**
 * How often the store's generation is read (config `transfer.notifyCheckIntervalMs`): the delay
 * before a change is announced, and the window in which a burst of writes becomes one NOTIFY.
 */
export const NOTIFY_CHECK_INTERVAL_MS = 200;

/** The DNS opcode of NOTIFY (RFC 1996 §3.1). */
export const OPCODE_NOTIFY = 4;

/** A secondary to notify. */
export interface NotifyTarget {
  /** An IPv4 or IPv6 address. */
  readonly address: string;
  readonly port: number;
  /** Signs the NOTIFY (RFC 8945) when set. */
  readonly key?: TsigKey;
}

/** What to notify about, to whom, and how persistently. */
export interface NotifyOptions {
  /** Zones whose serial changes are announced. */
  readonly zones: readonly string[];
  readonly targets: readonly NotifyTarget[];
  /** Default {@link NOTIFY_RETRIES}. */
  readonly retries?: number;
  /** Default {@link NOTIFY_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Default {@link NOTIFY_CHECK_INTERVAL_MS}. */
  readonly checkIntervalMs?: number;
}

/**
 * How one NOTIFY exchange ended: `acknowledged` (NOERROR), `refused` (another rcode), `timeout`
 * (no answer after every retransmission), `superseded` (dropped unanswered for a newer serial,
 * or at close).
 */
export type NotifyOutcome = 'acknowledged' | 'refused' | 'timeout' | 'superseded';

/** What the sender uses besides its store and options. */
export interface NotifyComponents {
  /** The clock of TSIG signatures. */
  readonly now?: Clock;
  readonly log?: Logger;
  /** Called for each NOTIFY datagram sent (first sends and retransmissions). */
  readonly onSent?: () => void;
  /** Called once per exchange with how it ended. */
  readonly onOutcome?: (outcome: NotifyOutcome) => void;
}

/** A running sender. */
export interface NotifySender {
  /** Reads the store now rather than at the next check (a write of this process). */
  check(): void;
  /** Stops checking, drops what is outstanding, closes the sockets. */
  close(): Promise<void>;
}

/** One zone and secondary: the serial last acknowledged or given up, and the exchange running. */
interface Peer {
  readonly zone: string;
  readonly target: NotifyTarget;
  /** The newest serial to announce once the running exchange ends. */
  wanted: number | undefined;
  exchange: Exchange | undefined;
}

interface Exchange {
  /** The serial announced: the zone's when the last datagram went out. */
  serial: number;
  id: number;
  attempt: number;
  timer: NodeJS.Timeout | undefined;
  verifier: TsigResponseVerifier | undefined;
}

/**
 * Starts announcing the serial changes of `options.zones` to `options.targets`. The current
 * serial of each zone is announced at once (a secondary that missed a change while this server
 * was down hears of it), then every change.
 */
export async function startNotifySender(
  store: DiscoveryStore,
  options: NotifyOptions,
  components: NotifyComponents = {},
): Promise<NotifySender> {
  const retries = options.retries ?? NOTIFY_RETRIES;
  const timeoutMs = options.timeoutMs ?? NOTIFY_TIMEOUT_MS;
  const interval = options.checkIntervalMs ?? NOTIFY_CHECK_INTERVAL_MS;
  const now = components.now ?? systemClock;
  const log = components.log ?? silentLogger;
  const zones = options.zones.map((zone) => canonicalName(zone));
  const peers: Peer[] = zones.flatMap((zone) =>
    options.targets.map((target) => ({ zone, target, wanted: undefined, exchange: undefined })),
  );
  let generation: number | undefined;
  let closed = false;

  const sockets = new Map<'udp4' | 'udp6', Promise<Socket>>();
  const socketFor = (address: string): Promise<Socket> => {
    const family = isIPv6(address) ? 'udp6' : 'udp4';
    let socket = sockets.get(family);
    if (socket === undefined) {
      socket = bind(family, (datagram, from) => receive(datagram, from), log);
      sockets.set(family, socket);
    }
    return socket;
  };

  const end = (peer: Peer, outcome: NotifyOutcome): void => {
    const exchange = peer.exchange;
    if (exchange === undefined) return;
    if (exchange.timer !== undefined) clearTimeout(exchange.timer);
    peer.exchange = undefined;
    components.onOutcome?.(outcome);
    const fields = {
      zone: peer.zone,
      serial: exchange.serial,
      secondary: `${peer.target.address}:${peer.target.port}`,
    };
    if (outcome === 'acknowledged') log.debug('notify-acknowledged', fields);
    else if (outcome === 'timeout') log.warn('notify-timeout', fields);
    if (!closed && peer.wanted !== undefined && peer.wanted !== exchange.serial) begin(peer);
  };

  const transmit = (peer: Peer): void => {
    const exchange = peer.exchange;
    if (exchange === undefined || closed) return;
    const soa = store.zoneInfo(peer.zone) === undefined ? undefined : soaOf(store, peer.zone);
    if (soa === undefined) {
      // The zone went away: nothing to announce until it is back.
      peer.wanted = undefined;
      return end(peer, 'superseded');
    }
    exchange.serial = soa.data.serial;
    exchange.id = randomInt(0, 0x10000);
    let wire = encodeMessage(notifyMessage(peer.zone, exchange.id, soa));
    exchange.verifier = undefined;
    if (peer.target.key !== undefined) {
      const signed = signMessage(wire, peer.target.key, { now: now() });
      wire = signed.wire;
      exchange.verifier = createTsigResponseVerifier(peer.target.key, signed.mac);
    }
    const wait = timeoutMs * 2 ** exchange.attempt;
    exchange.timer = setTimeout(() => {
      if (peer.exchange !== exchange) return;
      if (exchange.attempt >= retries) return end(peer, 'timeout');
      exchange.attempt++;
      transmit(peer);
    }, wait);
    exchange.timer.unref();
    socketFor(peer.target.address).then(
      (socket) => {
        if (closed || peer.exchange !== exchange) return;
        socket.send(wire, peer.target.port, peer.target.address);
        components.onSent?.();
      },
      (error: unknown) => log.error('notify-socket-failed', { error }),
    );
  };

  const begin = (peer: Peer): void => {
    const serial = peer.wanted;
    if (serial === undefined || closed) return;
    peer.exchange = { serial, id: 0, attempt: 0, timer: undefined, verifier: undefined };
    transmit(peer);
  };

  const receive = (datagram: Uint8Array, from: { address: string; port: number }): void => {
    if (datagram.length < 2) return;
    const id = ((datagram[0] as number) << 8) | (datagram[1] as number);
    for (const peer of peers) {
      const exchange = peer.exchange;
      if (
        exchange === undefined ||
        exchange.id !== id ||
        peer.target.port !== from.port ||
        !sameAddress(peer.target.address, from.address)
      ) {
        continue;
      }
      const rcode = answerTo(peer.zone, exchange, datagram, now(), log);
      if (rcode === undefined) continue;
      if (rcode === 'NOERROR') return end(peer, 'acknowledged');
      log.warn('notify-refused', { zone: peer.zone, rcode });
      return end(peer, 'refused');
    }
  };

  const check = (): void => {
    if (closed) return;
    const current = store.generation();
    if (current === generation) return;
    generation = current;
    for (const zone of zones) {
      const serial = store.zoneInfo(zone)?.serial;
      if (serial === undefined) continue;
      for (const peer of peers) {
        if (peer.zone !== zone || peer.wanted === serial) continue;
        peer.wanted = serial;
        // One exchange at a time: a newer serial supersedes the one outstanding (which `end`
        // then begins), unless that one's last retransmission carried this serial already.
        if (peer.exchange === undefined) begin(peer);
        else if (peer.exchange.serial !== serial) end(peer, 'superseded');
      }
    }
  };

  const timer = setInterval(check, interval);
  timer.unref();
  check();
  log.info('notify-started', { zones, secondaries: options.targets.length });

  return {
    check,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const peer of peers) end(peer, 'superseded');
      for (const socket of sockets.values()) {
        const bound = await socket.catch(() => undefined);
        await new Promise<void>((resolve) =>
          bound === undefined ? resolve() : bound.close(() => resolve()),
        );
      }
    },
  };
}

/**
 * The rcode of `datagram` when it answers the NOTIFY of `exchange` for `zone` (QR, opcode NOTIFY,
 * the question; signed when the NOTIFY was, RFC 8945 §5.3); else undefined: not an answer.
 */
function answerTo(
  zone: string,
  exchange: Exchange,
  datagram: Uint8Array,
  now: number,
  log: Logger,
): Message['rcode'] | undefined {
  let bytes = datagram;
  if (exchange.verifier !== undefined) {
    const check = exchange.verifier.verify(datagram, now);
    if (check.kind !== 'verified') {
      log.debug('notify-answer-unverified', {
        zone,
        why: check.kind === 'failed' ? check.reason : check.kind,
      });
      return undefined;
    }
    bytes = check.unsigned;
  }
  let answer: Message;
  try {
    answer = decodeMessage(bytes);
  } catch {
    return undefined;
  }
  const question = answer.questions[0];
  if (
    !answer.flags.qr ||
    answer.flags.opcode !== OPCODE_NOTIFY ||
    question === undefined ||
    !namesEqual(question.name, zone) ||
    question.type !== 'SOA'
  ) {
    return undefined;
  }
  return answer.rcode;
}

/** The NOTIFY of RFC 1996 §3.7 for `zone` at `soa`. */
export function notifyMessage(zone: string, id: number, soa: RecordOf<'SOA'>): Message {
  return {
    id,
    flags: {
      qr: false,
      opcode: OPCODE_NOTIFY,
      aa: true,
      tc: false,
      rd: false,
      ra: false,
      z: false,
      ad: false,
      cd: false,
    },
    rcode: 'NOERROR',
    questions: [{ name: zone, type: 'SOA', class: 'IN' }],
    answers: [soa],
    authorities: [],
    additionals: [],
  };
}

function soaOf(store: DiscoveryStore, zone: string): RecordOf<'SOA'> | undefined {
  const soa = store.readRRset(zone, zone, 'SOA')[0];
  return soa?.type === 'SOA' ? soa : undefined;
}

/** Whether two addresses as written and as a socket reports them are one. */
function sameAddress(configured: string, reported: string): boolean {
  return configured === reported || `::ffff:${configured}` === reported;
}

/** A UDP socket on an ephemeral port that hands every datagram to `receive`. */
function bind(
  family: 'udp4' | 'udp6',
  receive: (datagram: Uint8Array, from: { address: string; port: number }) => void,
  log: Logger,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(family);
    socket.once('error', reject);
    socket.on('message', (datagram, from) => receive(new Uint8Array(datagram), from));
    socket.bind(0, () => {
      socket.off('error', reject);
      // ICMP-driven errors (a secondary that is down) must not stop the sender.
      socket.on('error', (error) => log.debug('notify-socket-error', { error }));
      socket.unref();
      resolve(socket);
    });
  });
}
