/**
 * The infra cache: what the resolver knows of each server address it has asked — the smoothed
 * round-trip time, its variation and the retransmission timeout (RTO) they give (RFC 6298 §2),
 * the timeouts in a row and the backoff they earn — and the choice of server built on it, as
 * Unbound's infra cache and server selection make it (`util/rtt.c`, `services/cache/infra.c`,
 * `iterator/iter_utils.c`).
 *
 * Worked example: the zone `4.4.e164.mimi.arpa` has three server addresses: A, never asked
 * (counted at {@link UNKNOWN_SERVER_RTO_MS}, 376 ms), B (SRTT 8 ms, RTTVAR 3 ms: RTO max(50,
 * 8 + 4·3) = 50 ms) and C (SRTT 700 ms, RTTVAR 120 ms: RTO 1180 ms). The lowest RTO is B's; A
 * is within {@link RTT_BAND_MS} (400 ms) of it and C is not, so a question goes to A or B at
 * random, then to the other, then to C. Once A has answered in 5 ms it sits in the band beside
 * B; C is left alone, and asked once a minute besides a question ({@link SLOW_SERVER_PROBE_MS})
 * so that it can show it got faster. If B then times out, its RTO doubles (at least the query
 * timeout) and it goes after every server that has not failed, for 5 s
 * ({@link BACKOFF_INITIAL_MS}; 10 s after a second timeout in a row, … up to
 * {@link MAX_BACKOFF_MS}); when the 5 s are over the next question of the zone sends B a probe
 * besides its own query, and B's answer (it rejoins, its RTO computed from its samples again)
 * or its silence (a longer backoff) decides. A question whose other servers all fail still
 * tries B: being held back orders servers, it never leaves a zone without one.
 *
 * Bounded: at most {@link MAX_INFRA_HOSTS} addresses, each forgotten
 * {@link INFRA_HOST_TTL_SECONDS} after its last answer or failure (Unbound's
 * `infra-cache-numhosts` and `infra-host-ttl`), after which it counts as never asked.
 */

/** RTO of a server never asked (Unbound's `UNKNOWN_SERVER_NICENESS`): worse than a near one, within the band of most. */
export const UNKNOWN_SERVER_RTO_MS = 376;

/** Lowest RTO (Unbound's `RTT_MIN_TIMEOUT`): below it, loopback jitter would decide the order. */
export const MIN_RTO_MS = 50;

/** Highest RTO (Unbound's `RTT_MAX_TIMEOUT`, RFC 6298 §2.5 allows a maximum): doubling stops here. */
export const MAX_RTO_MS = 120_000;

/**
 * Servers whose RTO is within this of the lowest are chosen among at random (Unbound's
 * `RTT_BAND`): spreading load over servers that are about as fast, and making the next server
 * harder to predict for a spoofer. Config `upstream.rttBandMs`.
 */
export const RTT_BAND_MS = 400;

/** How long a server is held back after its first timeout in a row; doubling on each next. */
export const BACKOFF_INITIAL_MS = 5_000;

/** The longest a server is held back (Unbound's `RTT_MAX_TIMEOUT`). Config `upstream.maxBackoffMs`. */
export const MAX_BACKOFF_MS = 120_000;

/**
 * A server outside the band, not asked for this long, is sent a probe besides a question, so
 * that a server that got faster is seen to (Unbound gets there by forgetting it after
 * `infra-host-ttl`; a minute is sooner, at one query a minute per slow server).
 */
export const SLOW_SERVER_PROBE_MS = 60_000;

/** Seconds an entry lives after its last answer or failure (Unbound's `infra-host-ttl`). Config `upstream.hostTtlSeconds`. */
export const INFRA_HOST_TTL_SECONDS = 900;

/** Server addresses remembered; the least recently updated goes first (Unbound's `infra-cache-numhosts`). Config `upstream.maxHosts`. */
export const MAX_INFRA_HOSTS = 10_000;

/** RFC 6298 §2.3: weight of a new sample in the smoothed RTT (alpha, 1/8) … */
const ALPHA = 1 / 8;
/** … and in the RTT variation (beta, 1/4). */
const BETA = 1 / 4;
/** RFC 6298 §2.2: the RTO is SRTT + K·RTTVAR. */
const K = 4;

/** The settings of an {@link InfraCache}; see the constants for each. */
export interface InfraSettings {
  readonly rttBandMs: number;
  readonly maxBackoffMs: number;
  readonly hostTtlSeconds: number;
  readonly maxHosts: number;
  /**
   * The per-server query timeout: a server that timed out took at least this long, so its RTO
   * after a timeout is at least this.
   */
  readonly timeoutMs: number;
}

/** What the cache knows of one server address. */
export interface InfraEntry {
  /** Smoothed RTT and its variation in ms (RFC 6298); undefined until the first answer. */
  readonly srtt: number | undefined;
  readonly rttvar: number;
  /** The RTO in ms: what selection compares. */
  readonly rto: number;
  /** Timeouts (or failed connections) in a row since the last answer. */
  readonly failures: number;
  /** While `failures` > 0: until when (clock ms) no probe is sent to it. */
  readonly heldUntil: number;
  /** When (clock ms) it last answered or failed. */
  readonly updated: number;
  /** When (clock ms) its last counted failure was recorded; 0 when none since an answer. */
  readonly failedAt: number;
  /** A probe to it is on its way. */
  readonly probing: boolean;
}

/** The servers one question tries, and a server to probe besides. */
export interface ServerPlan {
  /** Addresses in the order to try them: the band at random, the slower, the held back. */
  readonly order: readonly string[];
  /**
   * An address to send the same question to without waiting for it (the answer, or its
   * absence, only updates the cache); never `order[0]`, whom the question itself asks.
   */
  readonly probe: string | undefined;
}

type Entry = { -readonly [K in keyof InfraEntry]: InfraEntry[K] };

/** The infra cache; see the module comment. */
export class InfraCache {
  readonly #settings: InfraSettings;
  readonly #now: () => number;
  readonly #random: () => number;
  /** Insertion order is update order: the first entry is the least recently updated. */
  readonly #entries = new Map<string, Entry>();

  /**
   * @param now a monotonic clock in ms for backoff, probes and lifetimes (RTT samples are
   *   measured by the caller)
   * @param random uniform in [0, 1), for the choice within the band
   */
  constructor(settings: InfraSettings, now: () => number, random: () => number) {
    this.#settings = settings;
    this.#now = now;
    this.#random = random;
  }

  /** Addresses remembered. */
  get size(): number {
    return this.#entries.size;
  }

  /** What is known of `id`, or undefined when nothing (never asked, or forgotten). */
  entry(id: string): InfraEntry | undefined {
    const entry = this.#fresh(id, this.#now());
    return entry === undefined ? undefined : { ...entry };
  }

  /** The RTO selection counts for `id`. */
  rto(id: string): number {
    return this.#fresh(id, this.#now())?.rto ?? UNKNOWN_SERVER_RTO_MS;
  }

  /**
   * The order in which one question tries the addresses `ids` (one zone's servers), and the
   * probe it sends besides; marks that probe as on its way.
   */
  plan(ids: readonly string[]): ServerPlan {
    const now = this.#now();
    const servers = [...new Set(ids)].map((id) => {
      const entry = this.#fresh(id, now);
      return { id, entry, rto: entry?.rto ?? UNKNOWN_SERVER_RTO_MS };
    });
    const byRto = (a: { rto: number }, b: { rto: number }): number => a.rto - b.rto;
    const usable = servers.filter((s) => (s.entry?.failures ?? 0) === 0);
    const held = servers.filter((s) => (s.entry?.failures ?? 0) > 0).sort(byRto);
    const best = Math.min(...usable.map((s) => s.rto));
    const band = usable.filter((s) => s.rto <= best + this.#settings.rttBandMs);
    const slower = usable.filter((s) => s.rto > best + this.#settings.rttBandMs).sort(byRto);
    const order = [...this.#shuffle(band), ...slower, ...held].map((s) => s.id);

    // A held-back server whose time is up comes first, then the slow server asked longest ago.
    const due = [
      ...held.filter((s) => s.entry !== undefined && s.entry.heldUntil <= now),
      ...slower
        .filter((s) => s.entry !== undefined && now - s.entry.updated >= SLOW_SERVER_PROBE_MS)
        .sort((a, b) => (a.entry?.updated ?? 0) - (b.entry?.updated ?? 0)),
    ].find((s) => s.entry?.probing === false && s.id !== order[0]);
    if (due?.entry !== undefined) due.entry.probing = true;
    return { order, probe: due?.id };
  }

  /**
   * `id` answered after `rttMs`: the RFC 6298 §2.2–2.3 update of SRTT and RTTVAR, and the RTO
   * from them (which undoes any backoff, §5.7); it is no longer held back.
   */
  answered(id: string, rttMs: number): void {
    const now = this.#now();
    const entry = this.#fresh(id, now) ?? unknownEntry(now);
    const r = Math.max(0, rttMs);
    if (entry.srtt === undefined) {
      entry.srtt = r;
      entry.rttvar = r / 2;
    } else {
      entry.rttvar = (1 - BETA) * entry.rttvar + BETA * Math.abs(entry.srtt - r);
      entry.srtt = (1 - ALPHA) * entry.srtt + ALPHA * r;
    }
    entry.rto = clampRto(entry.srtt + K * entry.rttvar);
    entry.failures = 0;
    entry.failedAt = 0;
    entry.heldUntil = 0;
    entry.probing = false;
    this.#store(id, entry, now);
  }

  /**
   * `id` timed out, or could not be reached, on a query sent at `sentAt` (clock ms): RFC 6298
   * §5.5 doubles its RTO (at least the query timeout), and it is held back for
   * {@link BACKOFF_INITIAL_MS}, doubled for each failure in a row, at most `maxBackoffMs`. A
   * failure of a query sent before the last counted failure was recorded is the same outage seen
   * again (many questions were waiting on the server when it went down): it counts once, as
   * Unbound's `infra_rtt_update` doubles the RTO only when the query went out with the current one.
   */
  failed(id: string, sentAt: number = this.#now()): void {
    const now = this.#now();
    const entry = this.#fresh(id, now) ?? unknownEntry(now);
    if (entry.failures > 0 && sentAt < entry.failedAt) {
      entry.probing = false;
      return;
    }
    entry.failures += 1;
    entry.failedAt = now;
    entry.rto = clampRto(Math.max(entry.rto * 2, this.#settings.timeoutMs));
    const backoff = BACKOFF_INITIAL_MS * 2 ** Math.min(entry.failures - 1, 30);
    entry.heldUntil = now + Math.min(backoff, this.#settings.maxBackoffMs);
    entry.probing = false;
    this.#store(id, entry, now);
  }

  /** A probe to `id` ended with neither an answer nor a timeout (the resolver closed). */
  abandon(id: string): void {
    const entry = this.#entries.get(id);
    if (entry !== undefined) entry.probing = false;
  }

  /** Forgets every address (`unbound-control flush_infra all`). */
  clear(): void {
    this.#entries.clear();
  }

  /** The entry of `id` unless it has outlived `hostTtlSeconds`, in which case it goes. */
  #fresh(id: string, now: number): Entry | undefined {
    const entry = this.#entries.get(id);
    if (entry === undefined) return undefined;
    if (now - entry.updated > this.#settings.hostTtlSeconds * 1000) {
      this.#entries.delete(id);
      return undefined;
    }
    return entry;
  }

  #store(id: string, entry: Entry, now: number): void {
    entry.updated = now;
    this.#entries.delete(id);
    this.#entries.set(id, entry);
    while (this.#entries.size > this.#settings.maxHosts) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }

  /** Fisher–Yates over a copy, with the injected random source. */
  #shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.min(i, Math.floor(this.#random() * (i + 1)));
      [out[i], out[j]] = [out[j] as T, out[i] as T];
    }
    return out;
  }
}

function unknownEntry(now: number): Entry {
  return {
    srtt: undefined,
    rttvar: 0,
    rto: UNKNOWN_SERVER_RTO_MS,
    failures: 0,
    heldUntil: 0,
    updated: now,
    failedAt: 0,
    probing: false,
  };
}

function clampRto(rto: number): number {
  return Math.min(MAX_RTO_MS, Math.max(MIN_RTO_MS, rto));
}
