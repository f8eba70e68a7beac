/**
 * Response Rate Limiting (RRL) of UDP answers, as BIND, NSD and Knot DNS do it: a server that
 * answers anyone over UDP is a reflector for whoever spoofs a victim's address, and a source of
 * free answers for whoever floods it. RRL counts the responses each client gets in streams of
 * "the same" response and, past a rate, stops sending them — except that every `slip`-th
 * response it would have dropped goes out truncated (TC set, no records), so a legitimate client
 * behind a flood retries over TCP (RFC 7766 §5) and is answered there. A spoofed source cannot
 * complete a TCP handshake, and a slip is no larger than the query: reflection gains nothing.
 * TCP answers are never limited here (as in BIND): a connection proves the address, and the
 * connection limits (`connection-limits.ts`) bound what one client can hold.
 *
 * A stream (one token bucket) is a client (IPv4 address or IPv6 /64, `clientKeyOf`, as the
 * connection limits count clients; BIND and NSD default to an IPv4 /24) and a class of response
 * (`classifyResponse` in `protocol/peek.ts`):
 *
 * | class      | one stream per            | rate                 |
 * | ---------- | ------------------------- | -------------------- |
 * | `positive` | query name and type       | `responsesPerSecond` |
 * | `referral` | delegation point          | `responsesPerSecond` |
 * | `denial`   | zone (the SOA owner)      | `denialsPerSecond`   |
 * | `error`    | client only               | `errorsPerSecond`    |
 *
 * Denials share one stream per zone (BIND's `nxdomains-per-second`): under compact denial
 * (RFC 9824) every name that does not exist is its own NOERROR answer, and a flood of random
 * numbers under one zone must count as one stream. A bucket holds `burstSeconds` of its rate,
 * so a burst that a rate would allow over that many seconds passes at once (a resolver's contact
 * sync); a rate of 0 leaves that class unlimited.
 *
 * Worked example, `responsesPerSecond` 5, `burstSeconds` 1, `slip` 3, and a client asking the
 * same name 20 times within a second: the first 5 are answered; of the 15 limited, the 3rd, 6th,
 * 9th, 12th and 15th go out as slips and the other 10 are dropped. Another client asking the same
 * name is answered: its stream is its own.
 *
 * The table holds at most `maxEntries` streams, least recently used dropped first (a dropped
 * stream comes back with a full bucket). Time comes from an injected clock.
 */
import { LRUCache } from 'lru-cache';
import { classifyResponse, slipResponse, type ResponseClass } from '../protocol/peek.js';
import { systemClock, type Clock } from './clock.js';
import { clientKeyOf } from './connection-limits.js';
import { createClientExemptions, type ClientExemptions } from './client-limits.js';

/** Default answers (or referrals) per second of one stream: NSD's `rrl-ratelimit`. */
export const DEFAULT_RRL_RESPONSES_PER_SECOND = 200;
/** Default denials per second of one client under one zone. */
export const DEFAULT_RRL_DENIALS_PER_SECOND = 200;
/** Default error responses per second of one client. */
export const DEFAULT_RRL_ERRORS_PER_SECOND = 200;
/**
 * Default seconds of its rate one stream may spend at once: 15, BIND's `window`. With the
 * default rates a resolver may get 3,000 denials from one zone at once, more than a contact sync
 * of 1,000 CSIs asks for.
 */
export const DEFAULT_RRL_BURST_SECONDS = 15;
/** Default: every 2nd limited response goes out truncated (BIND's and NSD's `slip` default). */
export const DEFAULT_RRL_SLIP = 2;
/** Default most streams tracked (a few MiB). */
export const DEFAULT_RRL_MAX_ENTRIES = 100_000;
/** Largest `slip` accepted: BIND's bound. */
export const MAX_RRL_SLIP = 10;

/** What RRL does with one response. */
export type RrlAction = 'send' | 'slip' | 'drop';

/** The settings of Response Rate Limiting (see the module comment). */
export interface RrlSettings {
  /** Positive answers and referrals per second per stream; 0: unlimited. */
  readonly responsesPerSecond: number;
  /** Denials per second per client and zone; 0: unlimited. */
  readonly denialsPerSecond: number;
  /** Errors per second per client; 0: unlimited. */
  readonly errorsPerSecond: number;
  /** Seconds of its rate a stream may spend at once (the bucket size). */
  readonly burstSeconds: number;
  /** Every `slip`-th limited response is sent truncated; 0: none, 1: all. */
  readonly slip: number;
  /** Most streams tracked. */
  readonly maxEntries: number;
}

/** The defaults of {@link RrlSettings}. */
export const DEFAULT_RRL_SETTINGS: RrlSettings = Object.freeze({
  responsesPerSecond: DEFAULT_RRL_RESPONSES_PER_SECOND,
  denialsPerSecond: DEFAULT_RRL_DENIALS_PER_SECOND,
  errorsPerSecond: DEFAULT_RRL_ERRORS_PER_SECOND,
  burstSeconds: DEFAULT_RRL_BURST_SECONDS,
  slip: DEFAULT_RRL_SLIP,
  maxEntries: DEFAULT_RRL_MAX_ENTRIES,
});

/** Counts of a limiter since it started, and its streams now. */
export interface RrlStats {
  /** Limited responses sent truncated. */
  readonly slipped: number;
  /** Limited responses not sent. */
  readonly dropped: number;
  /** Streams tracked now. */
  readonly entries: number;
}

/** What a limiter uses besides its settings. */
export interface RrlComponents {
  /** Default {@link systemClock}. */
  readonly now?: Clock;
  /** Clients never limited; default none. */
  readonly exempt?: ClientExemptions;
}

/** Response Rate Limiting of one UDP listener. */
export interface ResponseRateLimiter {
  readonly settings: RrlSettings;
  /** What to do with the response `wire` to `address`. */
  decide(wire: Uint8Array, address: string): RrlAction;
  /** The octets to send for `wire` to `address`: the response, its slip form, or none (drop). */
  limit(wire: Uint8Array, address: string): Uint8Array | undefined;
  stats(): RrlStats;
}

interface Stream {
  tokens: number;
  updated: number;
  /** Responses limited since the stream was made, for the slip count. */
  limited: number;
}

function checkSettings(settings: RrlSettings): void {
  const rate = (name: keyof RrlSettings): void => {
    const value = settings[name];
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(`rrl.${name} must be a number ≥ 0, got ${String(value)}`);
    }
  };
  rate('responsesPerSecond');
  rate('denialsPerSecond');
  rate('errorsPerSecond');
  if (!(Number.isFinite(settings.burstSeconds) && settings.burstSeconds > 0)) {
    throw new RangeError(`rrl.burstSeconds must be positive, got ${settings.burstSeconds}`);
  }
  if (!Number.isInteger(settings.slip) || settings.slip < 0 || settings.slip > MAX_RRL_SLIP) {
    throw new RangeError(`rrl.slip must be an integer 0..${MAX_RRL_SLIP}, got ${settings.slip}`);
  }
  if (!Number.isSafeInteger(settings.maxEntries) || settings.maxEntries < 1) {
    throw new RangeError(`rrl.maxEntries must be a positive integer, got ${settings.maxEntries}`);
  }
}

/** The stream of `response` for `client`, and its rate. */
function streamOf(
  client: string,
  response: ResponseClass,
  settings: RrlSettings,
): { key: string; perSecond: number } {
  switch (response.kind) {
    case 'positive':
      return {
        key: `${client} p ${response.type} ${response.name}`,
        perSecond: settings.responsesPerSecond,
      };
    case 'referral':
      return { key: `${client} r ${response.name}`, perSecond: settings.responsesPerSecond };
    case 'denial':
      return { key: `${client} d ${response.zone}`, perSecond: settings.denialsPerSecond };
    case 'error':
      return { key: `${client} e`, perSecond: settings.errorsPerSecond };
  }
}

/**
 * Creates the limiter; absent settings take {@link DEFAULT_RRL_SETTINGS}. Throws a `RangeError`
 * for a setting out of range.
 */
export function createResponseRateLimiter(
  settings: Partial<RrlSettings> = {},
  components: RrlComponents = {},
): ResponseRateLimiter {
  const full: RrlSettings = Object.freeze({ ...DEFAULT_RRL_SETTINGS, ...settings });
  checkSettings(full);
  const now = components.now ?? systemClock;
  const exempt = components.exempt ?? createClientExemptions([]);
  const table = new LRUCache<string, Stream>({ max: full.maxEntries });
  let slipped = 0;
  let dropped = 0;

  const decide = (wire: Uint8Array, address: string): RrlAction => {
    if (exempt.has(address)) return 'send';
    const { key, perSecond } = streamOf(clientKeyOf(address), classifyResponse(wire), full);
    if (perSecond === 0) return 'send';
    const burst = perSecond * full.burstSeconds;
    const t = now();
    let stream = table.get(key);
    if (stream === undefined) {
      stream = { tokens: burst, updated: t, limited: 0 };
      table.set(key, stream);
    }
    stream.tokens = Math.min(burst, stream.tokens + Math.max(0, t - stream.updated) * perSecond);
    stream.updated = Math.max(stream.updated, t);
    // A rate times whole seconds is exact enough; fractions of a token are not waited for.
    if (stream.tokens >= 1 - 1e-9) {
      stream.tokens -= 1;
      return 'send';
    }
    stream.limited++;
    if (full.slip > 0 && stream.limited % full.slip === 0) {
      slipped++;
      return 'slip';
    }
    dropped++;
    return 'drop';
  };

  return {
    settings: full,
    decide,
    limit(wire, address) {
      const action = decide(wire, address);
      if (action === 'send') return wire;
      return action === 'slip' ? slipResponse(wire) : undefined;
    },
    stats: () => ({ slipped, dropped, entries: table.size }),
  };
}
