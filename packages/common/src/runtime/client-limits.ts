/**
 * Per-client limits of a server's front ends (design §7: "every front end limits each client"):
 * token buckets keyed by client, and a budget of new names per client, for enumeration
 * protection (R8). A client is what the connection limits count (`clientKeyOf`): an IPv4
 * address, or an IPv6 /64.
 *
 * **Token buckets.** A bucket holds at most `burst` tokens and refills at `perSecond`; a request
 * takes its cost in tokens, or is refused with the whole seconds until it would fit (the
 * `Retry-After` of a 429, RFC 9110 §10.2.3). A bucket is created full. Worked example, 2 per
 * second with a burst of 10: ten queries at once pass, the eleventh is refused with retryAfter 1,
 * and after five quiet seconds the bucket is full again.
 *
 * **New names.** As Signal's contact discovery charges only numbers a client has not asked for
 * before, a {@link NameBudget} charges a request one token per name the client has not asked for
 * in the last `seenSeconds`, and remembers the names it charged. A request whose new names do
 * not all fit takes nothing and remembers nothing: it is refused whole. Worked example, a burst
 * of 2,000: a contact sync of 1,000 new CSIs takes 1,000; the same 1,000 again an hour later take
 * nothing; 1,500 more CSIs then need 1,500 tokens where 1,000 (plus the refill) are left, so the
 * request is refused and the client's budget and seen names are as they were before it.
 *
 * The names a client asked for are kept as keyed hashes (48 bits of SHA-256 over a per-process
 * random key and the name), so the table holds fixed-size numbers, not names, and a memory dump
 * does not list them (it still holds the key: a dictionary of phone numbers would find them).
 * Two names of one client sharing a hash is a one-in-2^48 event per pair.
 *
 * **Bounds.** Every table is bounded: at most `maxClients` clients, least recently active
 * dropped first; at most `maxSeenPerClient` names per client, oldest dropped first; at most
 * `maxSeen` names over all clients, taken from the least recently active clients first. A
 * dropped client comes back with a full budget: clients enough to push one out of the table
 * (many addresses, or many IPv6 /64s) reset its budget, which that many addresses have anyway.
 *
 * **Exemptions.** Trusted back ends can be exempted by CIDR ({@link createClientExemptions}):
 * an exempt client is never limited and takes no room in any table.
 *
 * Time comes from an injected {@link Clock} (whole seconds; a clock with fractions is counted as
 * finely as it reads), so tests move it instead of sleeping. A clock that steps back adds and
 * takes nothing.
 */
import { hash, randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { LRUCache } from 'lru-cache';
import { systemClock, type Clock } from './clock.js';
import { clientKeyOf } from './connection-limits.js';

/** Default most clients one limiter table tracks (a few MiB of buckets). */
export const DEFAULT_LIMITED_CLIENTS = 100_000;
/** Default time a name asked for stays free for the client that asked: one day. */
export const DEFAULT_SEEN_SECONDS = 86_400;
/** Octets of a name's keyed hash kept in a seen set: 48 bits, an exact JavaScript number. */
const SEEN_HASH_OCTETS = 6;
/**
 * Tokens are fractions (a rate of 2,000 a day is 0.0231… a second), and sums of fractions are
 * not exact: a client that waits the `retryAfter` it was given must find its tokens there, not
 * 499.99999999999994 of 500. Comparisons allow this much.
 */
const TOKEN_EPSILON = 1e-9;

/** A token bucket's settings: tokens added per second, and the most it holds. */
export interface Rate {
  readonly perSecond: number;
  readonly burst: number;
}

/** The outcome of taking tokens: `taken`, or `limited` with whole seconds until they fit. */
export type RateDecision =
  { readonly kind: 'taken' } | { readonly kind: 'limited'; readonly retryAfter: number };

/** The outcome of charging names to a {@link NameBudget}. */
export type NameCharge =
  | {
      readonly kind: 'taken';
      /** Tokens taken: the names not asked for in the seen window. */
      readonly charged: number;
    }
  | {
      readonly kind: 'limited';
      /** Whole seconds until the request would fit (or, if it never can, the budget is full). */
      readonly retryAfter: number;
      /** Tokens the request needs. */
      readonly needed: number;
      /** Whole tokens the client has now. */
      readonly available: number;
    };

/** Addresses exempt from every limit (trusted back ends). */
export interface ClientExemptions {
  /** Whether `address` (IPv4, IPv6, or IPv4-mapped IPv6) lies in an exempt range. */
  has(address: string): boolean;
  /** The ranges, as given. */
  readonly ranges: readonly string[];
}

/** `a.b.c.d` for an IPv4-mapped IPv6 address, the address itself otherwise. */
function unmapped(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped?.[1] ?? address;
}

/** A CIDR range (`10.0.0.0/8`, `2001:db8::/32`) or a single address, parsed; else undefined. */
function parseCidr(
  text: string,
): { network: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const parts = text.split('/');
  if (parts.length > 2) return undefined;
  const [network = '', length] = parts;
  const version = isIP(network);
  if (version === 0) return undefined;
  const max = version === 4 ? 32 : 128;
  const prefix = length === undefined ? max : /^\d{1,3}$/.test(length) ? Number(length) : NaN;
  if (!(prefix >= 0 && prefix <= max)) return undefined;
  return { network, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/** Whether `text` is a CIDR range or a single IP address ({@link createClientExemptions}). */
export function isCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

/** Client addresses whose exemption is remembered at most; past it the memo starts afresh. */
export const EXEMPTION_MEMO_ENTRIES = 4096;

/**
 * The exemptions of `ranges`, each a CIDR range (`192.0.2.0/24`, `2001:db8::/48`) or a single
 * address. Throws a `RangeError` naming the first entry that is neither.
 */
export function createClientExemptions(ranges: readonly string[]): ClientExemptions {
  const list = new BlockList();
  for (const range of ranges) {
    const cidr = parseCidr(range);
    if (cidr === undefined) {
      throw new RangeError(`${JSON.stringify(range)} is not a CIDR range or an IP address`);
    }
    list.addSubnet(cidr.network, cidr.prefix, cidr.family);
  }
  const frozen = Object.freeze([...ranges]);
  // `BlockList.check` builds a native address object per call, which costs more than answering
  // a cached query: the answers for the addresses seen last are kept (the ranges never change).
  const seen = new Map<string, boolean>();
  return {
    ranges: frozen,
    has(address) {
      if (frozen.length === 0) return false;
      const known = seen.get(address);
      if (known !== undefined) return known;
      const plain = unmapped(address);
      const version = isIP(plain);
      const exempt = version !== 0 && list.check(plain, version === 4 ? 'ipv4' : 'ipv6');
      if (seen.size >= EXEMPTION_MEMO_ENTRIES) seen.clear();
      seen.set(address, exempt);
      return exempt;
    },
  };
}

/** No exemptions. */
const NONE: ClientExemptions = createClientExemptions([]);

/** A bucket's state: tokens, and the clock reading they were counted at. */
interface Bucket {
  tokens: number;
  updated: number;
}

function checkRate(what: string, rate: Rate): void {
  if (!(Number.isFinite(rate.perSecond) && rate.perSecond > 0)) {
    throw new RangeError(`${what}: perSecond must be a positive number, got ${rate.perSecond}`);
  }
  if (!Number.isSafeInteger(rate.burst) || rate.burst < 1) {
    throw new RangeError(`${what}: burst must be a positive integer, got ${rate.burst}`);
  }
}

function checkCount(what: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${what} must be a positive integer, got ${value}`);
  }
}

/** Adds the tokens earned since the bucket was last counted, up to the burst. */
function refill(bucket: Bucket, rate: Rate, now: number): void {
  const elapsed = Math.max(0, now - bucket.updated);
  bucket.tokens = Math.min(rate.burst, bucket.tokens + elapsed * rate.perSecond);
  bucket.updated = Math.max(bucket.updated, now);
}

/** Whole seconds (at least 1) until `bucket` holds `cost` tokens, or is full if it never can. */
function secondsUntil(bucket: Bucket, cost: number, rate: Rate): number {
  const target = Math.min(cost, rate.burst);
  // Rounded to the microsecond first, so that 18000.000000000004 s is 18,000 s, not 18,001.
  const seconds = Math.round(((target - bucket.tokens) / rate.perSecond) * 1e6) / 1e6;
  return Math.max(1, Math.ceil(seconds));
}

/** Settings of {@link createClientRateLimiter}. */
export interface ClientRateLimiterOptions {
  readonly rate: Rate;
  /** Most clients tracked; default {@link DEFAULT_LIMITED_CLIENTS}. */
  readonly maxClients?: number;
  readonly exempt?: ClientExemptions;
  /** Default {@link systemClock}. */
  readonly now?: Clock;
}

/** One token bucket per client. */
export interface ClientRateLimiter {
  /** Takes `cost` tokens (default 1) from the bucket of `address`'s client, or says the wait. */
  take(address: string, cost?: number): RateDecision;
  /** Whole tokens the client of `address` has now. */
  available(address: string): number;
  /** Clients tracked now. */
  readonly clients: number;
}

/** A table of token buckets, one per client (see the module comment). */
export function createClientRateLimiter(options: ClientRateLimiterOptions): ClientRateLimiter {
  const { rate } = options;
  checkRate('rate', rate);
  const maxClients = options.maxClients ?? DEFAULT_LIMITED_CLIENTS;
  checkCount('maxClients', maxClients);
  const exempt = options.exempt ?? NONE;
  const now = options.now ?? systemClock;
  const table = new LRUCache<string, Bucket>({ max: maxClients });

  const bucketOf = (address: string): Bucket => {
    const key = clientKeyOf(address);
    const t = now();
    let bucket = table.get(key);
    if (bucket === undefined) {
      bucket = { tokens: rate.burst, updated: t };
      table.set(key, bucket);
    }
    refill(bucket, rate, t);
    return bucket;
  };

  return {
    take(address, cost = 1) {
      if (exempt.has(address)) return { kind: 'taken' };
      const bucket = bucketOf(address);
      if (bucket.tokens + TOKEN_EPSILON >= cost) {
        bucket.tokens -= cost;
        return { kind: 'taken' };
      }
      return { kind: 'limited', retryAfter: secondsUntil(bucket, cost, rate) };
    },
    available(address) {
      if (exempt.has(address)) return rate.burst;
      const key = clientKeyOf(address);
      const bucket = table.peek(key);
      if (bucket === undefined) return rate.burst;
      const copy = { ...bucket };
      refill(copy, rate, now());
      return Math.floor(copy.tokens + TOKEN_EPSILON);
    },
    get clients() {
      return table.size;
    },
  };
}

/** Settings of {@link createNameBudget}. */
export interface NameBudgetOptions {
  /** New names: tokens per second and the most a client holds. */
  readonly rate: Rate;
  /** A name asked for within this long is not new; default {@link DEFAULT_SEEN_SECONDS}. */
  readonly seenSeconds?: number;
  /** Most names remembered per client; at least `rate.burst`. */
  readonly maxSeenPerClient: number;
  /** Most names remembered over all clients; at least `maxSeenPerClient`. */
  readonly maxSeen: number;
  /** Most clients tracked; default {@link DEFAULT_LIMITED_CLIENTS}. */
  readonly maxClients?: number;
  readonly exempt?: ClientExemptions;
  /** Default {@link systemClock}. */
  readonly now?: Clock;
}

/** Counts of a {@link NameBudget}'s tables. */
export interface NameBudgetStats {
  /** Clients tracked. */
  readonly clients: number;
  /** Names remembered over all clients. */
  readonly seen: number;
}

/** A budget of new names per client (see the module comment). */
export interface NameBudget {
  /**
   * Charges `names` (canonical, e.g. DNS names in canonical form) to the client of `address`:
   * one token per distinct name not asked for in the seen window, all or nothing.
   */
  charge(address: string, names: readonly string[]): NameCharge;
  /** Whole tokens the client of `address` has now. */
  available(address: string): number;
  stats(): NameBudgetStats;
}

interface NameClient {
  readonly bucket: Bucket;
  /** Keyed hash of a name → when it was last charged or asked; oldest first. */
  readonly seen: Map<number, number>;
}

/** A budget of new names per client (see the module comment). */
export function createNameBudget(options: NameBudgetOptions): NameBudget {
  const { rate, maxSeenPerClient, maxSeen } = options;
  checkRate('rate', rate);
  const seenSeconds = options.seenSeconds ?? DEFAULT_SEEN_SECONDS;
  if (!(Number.isFinite(seenSeconds) && seenSeconds > 0)) {
    throw new RangeError(`seenSeconds must be a positive number, got ${seenSeconds}`);
  }
  checkCount('maxSeenPerClient', maxSeenPerClient);
  checkCount('maxSeen', maxSeen);
  // A request of `burst` new names must be rememberable whole, or it would be charged again.
  if (maxSeenPerClient < rate.burst) {
    throw new RangeError(
      `maxSeenPerClient (${maxSeenPerClient}) must be at least the burst (${rate.burst})`,
    );
  }
  if (maxSeen < maxSeenPerClient) {
    throw new RangeError(
      `maxSeen (${maxSeen}) must be at least maxSeenPerClient (${maxSeenPerClient})`,
    );
  }
  const maxClients = options.maxClients ?? DEFAULT_LIMITED_CLIENTS;
  checkCount('maxClients', maxClients);
  const exempt = options.exempt ?? NONE;
  const now = options.now ?? systemClock;
  // Per budget: the seen sets of two servers in one process do not share hashes.
  const key = randomBytes(32).toString('hex');
  let seenTotal = 0;
  const table = new LRUCache<string, NameClient>({
    max: maxClients,
    // Whichever way a client leaves (pushed out by newer clients), its names leave the count.
    dispose: (client) => {
      seenTotal -= client.seen.size;
    },
  });

  const hashOf = (name: string): number =>
    hash('sha256', key + name, 'buffer').readUIntBE(0, SEEN_HASH_OCTETS);

  /** Drops the names of `client` asked for before `since`, oldest first. */
  const expire = (client: NameClient, since: number): void => {
    for (const [h, at] of client.seen) {
      if (at > since) break;
      client.seen.delete(h);
      seenTotal--;
    }
  };

  /** Drops the oldest names of `client` until it holds at most `keep`. */
  const trim = (client: NameClient, keep: number): void => {
    for (const h of client.seen.keys()) {
      if (client.seen.size <= keep) break;
      client.seen.delete(h);
      seenTotal--;
    }
  };

  /** Brings the names over all clients to `maxSeen`, from the least recently active client on. */
  const trimAll = (current: NameClient): void => {
    for (const other of table.rvalues()) {
      if (seenTotal <= maxSeen) return;
      if (other === undefined || other === current) continue;
      trim(other, Math.max(0, other.seen.size - (seenTotal - maxSeen)));
    }
    // Only the current client is left to give up names (it holds at most maxSeenPerClient).
    if (seenTotal > maxSeen) trim(current, current.seen.size - (seenTotal - maxSeen));
  };

  return {
    charge(address, names) {
      if (exempt.has(address)) return { kind: 'taken', charged: 0 };
      const clientKey = clientKeyOf(address);
      const t = now();
      let client = table.get(clientKey);
      const known = client !== undefined;
      client ??= { bucket: { tokens: rate.burst, updated: t }, seen: new Map() };
      expire(client, t - seenSeconds);
      const hashes = new Set<number>();
      for (const name of names) hashes.add(hashOf(name));
      let needed = 0;
      for (const h of hashes) if (!client.seen.has(h)) needed++;
      refill(client.bucket, rate, t);
      if (needed > client.bucket.tokens + TOKEN_EPSILON) {
        // Refused whole: nothing taken, nothing remembered (a new client is not even tracked).
        return {
          kind: 'limited',
          retryAfter: secondsUntil(client.bucket, needed, rate),
          needed,
          available: Math.floor(client.bucket.tokens + TOKEN_EPSILON),
        };
      }
      client.bucket.tokens -= needed;
      for (const h of hashes) {
        if (client.seen.delete(h)) seenTotal--;
        client.seen.set(h, t);
        seenTotal++;
      }
      if (!known) table.set(clientKey, client);
      trim(client, maxSeenPerClient);
      if (seenTotal > maxSeen) trimAll(client);
      return { kind: 'taken', charged: needed };
    },
    available(address) {
      if (exempt.has(address)) return rate.burst;
      const client = table.peek(clientKeyOf(address));
      if (client === undefined) return rate.burst;
      const copy = { ...client.bucket };
      refill(copy, rate, now());
      return Math.floor(copy.tokens + TOKEN_EPSILON);
    },
    stats: () => ({ clients: table.size, seen: seenTotal }),
  };
}
