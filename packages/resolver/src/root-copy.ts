import {
  buildQuery,
  canonicalName,
  isSubdomain,
  labelCount,
  nameLabels,
  joinLabels,
  queryTcp,
  responseFlags,
  transferZone,
  verifyZonemd,
  ZoneTransferError,
  TransportError,
  type DnskeyData,
  type DsData,
  type Logger,
  type Message,
  type RecordOf,
  type ResourceRecord,
  type RRType,
  type ServerAddress,
  type ZoneTransferOptions,
  type ZoneTransferResult,
} from '@mimi-discovery/common';
import type { RootCopyView, ZoneCut } from './iterator.js';
import { referralServers } from './iterator.js';
import { SERVER_TIMEOUT_MS } from './limits.js';
import {
  createBudget,
  rrsetOf,
  validateDnskeys,
  validateRRset,
  type VerificationBudget,
} from './validator.js';

/**
 * The resolver's local copy of the root's zone, in the spirit of RFC 8806: the root directory's
 * zone holds only public delegations (design §2), so the resolver transfers it whole (AXFR over
 * TCP, RFC 5936) from the root servers that list a DNS port in the root hints, checks it, and
 * answers from it what it would otherwise ask the root: the zone cut of a delegated range, and
 * the root's keys. With a valid copy, a lookup under a delegated range sends nothing to the root
 * (R6: the root learns no CSI, not even a prefix); for a name under no delegation, the walk at
 * the root starts at the closest name the copy holds, so the root is asked one label below a
 * name it already published.
 *
 * A transfer is kept only when all of it checks out (nothing of a rejected one is used):
 * 1. the DNSKEY RRset at the apex matches the trust anchor and is signed by it (RFC 4035 §5.2);
 * 2. every authoritative RRset verifies with those keys (the validator's `validateRRset`, within
 *    a verification budget of twice what an honest zone needs, KeyTrap's per-RRset bounds
 *    included), the ZONEMD RRset too;
 * 3. the whole zone matches that signed ZONEMD (RFC 8976 §4): the unsigned delegation NS and
 *    glue, which no RRSIG covers (RFC 4035 §2.2), are authenticated by it alone.
 *
 * Refresh: at the SOA refresh interval (or `refreshSeconds`), the SOA serial is asked over TCP
 * and the zone transferred again when it changed (RFC 1982 serial arithmetic); and whatever the
 * serial says, before the earliest RRSIG of the copy expires. A copy that could not be refreshed
 * is dropped when that RRSIG expires: lookups then ask the root again, minimised. Transfers are
 * bounded in time, records and octets ({@link ROOT_COPY_TRANSFER_TIMEOUT_MS},
 * {@link ROOT_COPY_MAX_RECORDS}, {@link ROOT_COPY_MAX_OCTETS}), so a root server that drip-feeds
 * or sends an endless zone is cut off.
 *
 * Worked example: a root zone with delegations `4.4.e164.mimi.arpa` and
 * `example.com.email.mimi.arpa`. A lookup of `…0.2.4.4.e164.mimi.arpa MAP` starts at the cut
 * `4.4.e164.mimi.arpa` built from the copy (NS, glue, `_dns` SVCB, validated DS) and asks the
 * root nothing; one of `…3.3.e164.mimi.arpa MAP` starts at the root with two labels walked
 * (`e164.mimi.arpa` exists in the copy), so the root's one question is `3.e164.mimi.arpa`.
 */

/** Most records a transfer of the root's zone may bring before it is cut off. */
export const ROOT_COPY_MAX_RECORDS = 200_000;
/** Most octets a transfer of the root's zone may bring before it is cut off: 64 MiB. */
export const ROOT_COPY_MAX_OCTETS = 64 * 1024 * 1024;
/** Time one transfer may take, from connecting to the closing SOA. */
export const ROOT_COPY_TRANSFER_TIMEOUT_MS = 30_000;
/**
 * A copy is transferred again this long before its earliest RRSIG expires, whatever the serial
 * says; it is dropped at that expiry if no transfer succeeded by then.
 */
export const ROOT_COPY_EXPIRY_MARGIN_SECONDS = 3600;
/** Wait before trying again after a refresh that failed (when the SOA's retry is longer, that). */
export const ROOT_COPY_MIN_RETRY_SECONDS = 60;
/** Verifications of a copy's signatures per signed RRset: twice what an honest zone needs. */
export const ROOT_COPY_VERIFICATIONS_PER_RRSET = 2;

/** How the copy is set up (`ResolverConfig.rootCopy`, defaults filled in). */
export interface RootCopySettings {
  /** Seconds between serial checks; default the SOA's refresh. */
  readonly refreshSeconds?: number;
  /** Default {@link ROOT_COPY_MAX_RECORDS}. */
  readonly maxRecords?: number;
  /** Default {@link ROOT_COPY_MAX_OCTETS}. */
  readonly maxOctets?: number;
  /** Default {@link ROOT_COPY_TRANSFER_TIMEOUT_MS}. */
  readonly transferTimeoutMs?: number;
}

/** What the copy is built from. */
export interface RootCopyInit extends RootCopySettings {
  /** The namespace apex: the root's zone. */
  readonly apex: string;
  /** The trust anchor's DS (and the DS of its DNSKEYs). */
  readonly ds: readonly DsData[];
  /**
   * The DS trusted now, when the trust anchor follows the apex's keys (RFC 5011,
   * `auto-trust.ts`): each transfer is checked against it rather than {@link ds}.
   */
  readonly trustedDs?: () => readonly DsData[];
  /** Root servers with a DNS port, tried in order. */
  readonly servers: readonly ServerAddress[];
  /** How the copy's delegations are reached (`referralServers`). */
  readonly transport: 'doh' | 'dns';
  readonly dnsPort: number;
  /** Whole seconds since the epoch (the resolver's clock). */
  readonly now: () => number;
  readonly log: Logger;
  /** Default `transferZone` of `@mimi-discovery/common`. */
  readonly transfer?: (
    server: ServerAddress,
    zone: string,
    options: ZoneTransferOptions,
  ) => Promise<ZoneTransferResult>;
}

/** What the copy is doing, for stats and metrics. */
export interface RootCopyStatus {
  /** `off`: disabled or no root server lists a DNS port; `empty`: no valid copy now. */
  readonly state: 'off' | 'empty' | 'valid';
  readonly serial?: number;
  /** When the copy in use was transferred, seconds since the epoch. */
  readonly loadedAt?: number;
  /** Seconds since then, at the resolver's clock. */
  readonly ageSeconds?: number;
  /** When it will be dropped unless refreshed (its earliest RRSIG expiry). */
  readonly expiresAt?: number;
  readonly records?: number;
  readonly delegations?: number;
  readonly transfersOk: number;
  readonly transfersFailed: number;
}

/** The outcome of checking a transferred zone. */
export type RootCopyCheck =
  | { readonly kind: 'valid'; readonly copy: RootCopy }
  | { readonly kind: 'rejected'; readonly reason: string; readonly detail: string };

/** A validated copy with its facts. */
export interface RootCopy extends RootCopyView {
  readonly soa: RecordOf<'SOA'>;
  readonly loadedAt: number;
  readonly expiresAt: number;
  readonly records: number;
  readonly delegations: number;
}

const rejected = (reason: string, detail: string): RootCopyCheck => ({
  kind: 'rejected',
  reason,
  detail,
});

/**
 * Checks a transferred root zone (the records of a transfer, closing SOA left out) as the module
 * comment says, at `now`. Never throws for hostile input: every problem is a `rejected` outcome.
 */
export async function checkRootCopy(
  records: readonly ResourceRecord[],
  init: Pick<RootCopyInit, 'apex' | 'ds' | 'transport' | 'dnsPort'>,
  now: number,
): Promise<RootCopyCheck> {
  const apex = canonicalName(init.apex);
  const rrsets = new Map<string, ResourceRecord[]>();
  const signatures = new Map<string, Array<RecordOf<'RRSIG'>>>();
  const owners = new Set<string>();
  for (const rr of records) {
    const owner = canonicalName(rr.name);
    if (!isSubdomain(owner, apex) || rr.class !== 'IN') {
      return rejected('out-of-zone', `${rr.name} ${rr.class} ${rr.type} is not in ${apex}`);
    }
    owners.add(owner);
    if (rr.type === 'RRSIG') {
      signatures.set(owner, [...(signatures.get(owner) ?? []), rr]);
      continue;
    }
    const id = `${owner}|${rr.type}`;
    const rrset = rrsets.get(id);
    if (rrset === undefined) rrsets.set(id, [rr]);
    else rrset.push(rr);
  }
  const soa = rrsets.get(`${apex}|SOA`);
  if (soa?.length !== 1) return rejected('no-soa', `${apex} has ${soa?.length ?? 0} SOA records`);
  const cuts = new Set<string>();
  for (const id of rrsets.keys()) {
    const [owner = '', type] = id.split('|');
    if (type === 'NS' && owner !== apex) cuts.add(owner);
  }
  const belowCut = (owner: string): boolean => {
    for (let at = parentOf(owner); at !== undefined && at !== apex; at = parentOf(at)) {
      if (cuts.has(at)) return true;
    }
    return false;
  };

  // Every authoritative RRset is signed: one verification each when honest.
  const signed = [...rrsets.entries()].filter(([id]) => {
    const [owner = '', type] = id.split('|');
    return !belowCut(owner) && !(cuts.has(owner) && type !== 'DS');
  });
  const budget: VerificationBudget = {
    ...createBudget(),
    remaining: (signed.length + 1) * ROOT_COPY_VERIFICATIONS_PER_RRSET,
  };
  const apexSigs = signatures.get(apex) ?? [];
  const dnskeys = await validateDnskeys(
    apex,
    [...(rrsets.get(`${apex}|DNSKEY`) ?? []), ...apexSigs],
    init.ds,
    now,
    budget,
  );
  if (dnskeys.kind === 'bogus') return rejected(dnskeys.reason, `DNSKEY of ${apex}`);
  const keys: readonly DnskeyData[] = dnskeys.value.keys;
  let expiresAt = Math.min(...dnskeys.value.rrsigs.map((sig) => sig.data.expiration));
  const ds = new Map<string, DsData[]>();
  for (const [id, rrset] of signed) {
    const [owner = '', type = ''] = id.split('|');
    if (type === 'DNSKEY' && owner === apex) continue;
    const verified = await validateRRset(
      rrset,
      signatures.get(owner) ?? [],
      apex,
      keys,
      now,
      budget,
    );
    if (verified.kind === 'bogus') return rejected(verified.reason, `${type} at ${owner}`);
    for (const sig of verified.value.rrsigs) expiresAt = Math.min(expiresAt, sig.data.expiration);
    if (type === 'DS')
      ds.set(
        owner,
        rrset.flatMap((rr) => (rr.type === 'DS' ? [rr.data] : [])),
      );
  }
  // RFC 8976 §4: the ZONEMD RRset is trusted now (it was signed and verified above, if present).
  const digest = verifyZonemd(apex, records);
  if (digest.kind === 'failed') return rejected(`zonemd-${digest.reason}`, `ZONEMD of ${apex}`);

  // The delegations, as a referral from the root would give them.
  const cutsByZone = new Map<string, ZoneCut>();
  for (const zone of cuts) {
    const dsOfZone = ds.get(zone);
    // An unsigned delegation is bogus by design §5: it is not used from the copy; a lookup under
    // it asks the root, and its answer is found bogus there.
    if (dsOfZone === undefined || belowCut(zone)) continue;
    const referral = referralOf(zone, rrsets);
    const servers = referralServers(referral, zone, apex, init.transport, init.dnsPort);
    if (servers.length > 0) cutsByZone.set(zone, { zone, servers, ds: dsOfZone });
  }
  // Every owner and the empty non-terminals above it exist.
  const names = new Set<string>();
  for (const owner of owners) {
    for (let at: string | undefined = owner; at !== undefined && at !== apex; at = parentOf(at)) {
      if (names.has(at)) break;
      names.add(at);
    }
  }
  const dnskeyRrset = dnskeys.value.rrset;
  const dnskeySigs = dnskeys.value.rrsigs;
  const soaRecord = soa[0] as RecordOf<'SOA'>;
  const apexLabels = labelCount(apex);
  const copy: RootCopy = {
    serial: soaRecord.data.serial,
    soa: soaRecord,
    loadedAt: now,
    expiresAt,
    records: records.length,
    delegations: cutsByZone.size,
    cut: (name) => cutsByZone.get(name),
    closestEncloser(name) {
      const canonical = canonicalName(name);
      if (!isSubdomain(canonical, apex)) return 0;
      const labels = nameLabels(canonical);
      for (let take = labels.length; take > apexLabels; take--) {
        if (names.has(joinLabels(labels.slice(labels.length - take)))) return take - apexLabels;
      }
      return 0;
    },
    keys: (at) => ({
      kind: 'answer',
      zone: apex,
      server: 'root-copy',
      rrset: dnskeyRrset,
      rrsigs: dnskeySigs,
      ttl: Math.max(0, Math.min(dnskeys.value.ttl, expiresAt - at)),
    }),
  };
  return { kind: 'valid', copy };
}

/** The parent of a canonical name (`a.b` → `b`); undefined for a single label. */
function parentOf(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot < 0 ? undefined : name.slice(dot + 1);
}

/** A referral to `zone` as the root would send it: NS, and glue and `_dns` SVCB of its servers. */
function referralOf(zone: string, rrsets: ReadonlyMap<string, ResourceRecord[]>): Message {
  const ns = rrsets.get(`${zone}|NS`) ?? [];
  const additionals: ResourceRecord[] = [];
  for (const rr of ns) {
    if (rr.type !== 'NS') continue;
    const host = canonicalName(rr.data);
    for (const type of ['A', 'AAAA'] as RRType[])
      additionals.push(...(rrsets.get(`${host}|${type}`) ?? []));
    additionals.push(...(rrsets.get(`_dns.${host}|SVCB`) ?? []));
  }
  return {
    id: 0,
    flags: responseFlags(),
    rcode: 'NOERROR',
    questions: [],
    answers: [],
    authorities: ns,
    additionals,
  };
}

/** The root copy of one resolver: its current copy, its refreshes, and their counts. */
export interface RootCopyKeeper {
  /** The copy to use at the resolver's clock now; undefined when there is none (or it expired). */
  current(): RootCopyView | undefined;
  /**
   * Checks the serial and transfers when it changed (or when there is no copy, or it is close
   * to expiry); joins a refresh under way. Resolves with the status after it; never rejects.
   */
  refresh(): Promise<RootCopyStatus>;
  status(): RootCopyStatus;
  /** Stops the timer and any transfer under way. */
  close(): void;
}

/** A keeper that never has a copy: the copy is disabled, or no root server lists a DNS port. */
export function disabledRootCopy(): RootCopyKeeper {
  const status: RootCopyStatus = { state: 'off', transfersOk: 0, transfersFailed: 0 };
  return {
    current: () => undefined,
    refresh: () => Promise.resolve(status),
    status: () => status,
    close: () => undefined,
  };
}

/**
 * Creates the keeper of a root copy and starts its first transfer at once; lookups that come
 * before it completes ask the root. `close()` stops it.
 */
export function startRootCopy(init: RootCopyInit): RootCopyKeeper {
  const transfer = init.transfer ?? transferZone;
  const log = init.log;
  const abort = new AbortController();
  let copy: RootCopy | undefined;
  let transfersOk = 0;
  let transfersFailed = 0;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<RootCopyStatus> | undefined;
  let closed = false;

  const current = (): RootCopy | undefined => {
    if (copy !== undefined && init.now() >= copy.expiresAt) {
      // Past its earliest RRSIG expiry the copy proves nothing any more.
      log.warn('root-copy-expired', { serial: copy.serial, expiresAt: copy.expiresAt });
      copy = undefined;
    }
    return copy;
  };

  const status = (): RootCopyStatus => {
    const c = current();
    return c === undefined
      ? { state: 'empty', transfersOk, transfersFailed }
      : {
          state: 'valid',
          serial: c.serial,
          loadedAt: c.loadedAt,
          ageSeconds: Math.max(0, init.now() - c.loadedAt),
          expiresAt: c.expiresAt,
          records: c.records,
          delegations: c.delegations,
          transfersOk,
          transfersFailed,
        };
  };

  /** The serial a root server reports now, or undefined when none answers. */
  const serialNow = async (): Promise<number | undefined> => {
    for (const server of init.servers) {
      try {
        const response = await queryTcp(server, buildQuery(init.apex, 'SOA'), {
          timeoutMs: SERVER_TIMEOUT_MS,
        });
        const soa = rrsetOf(response.answers, init.apex, 'SOA')[0];
        if (response.rcode === 'NOERROR' && soa !== undefined) return soa.data.serial;
      } catch (error) {
        if (!(error instanceof TransportError)) throw error;
      }
    }
    return undefined;
  };

  /** One transfer from each server in turn until one gives a zone that checks out. */
  const load = async (): Promise<boolean> => {
    for (const server of init.servers) {
      if (closed) return false;
      const where = `${server.host}:${server.port}`;
      let result: ZoneTransferResult;
      try {
        result = await transfer(server, init.apex, {
          timeoutMs: init.transferTimeoutMs ?? ROOT_COPY_TRANSFER_TIMEOUT_MS,
          maxRecords: init.maxRecords ?? ROOT_COPY_MAX_RECORDS,
          maxOctets: init.maxOctets ?? ROOT_COPY_MAX_OCTETS,
          signal: abort.signal,
        });
      } catch (error) {
        if (!(error instanceof ZoneTransferError)) throw error;
        if (closed) return false;
        transfersFailed++;
        log.warn('root-copy-transfer-failed', {
          server: where,
          code: error.code,
          error: error.message,
        });
        continue;
      }
      const anchor = init.trustedDs === undefined ? init : { ...init, ds: init.trustedDs() };
      const checked = await checkRootCopy(result.records, anchor, init.now());
      if (checked.kind === 'rejected') {
        transfersFailed++;
        log.warn('root-copy-rejected', {
          server: where,
          reason: checked.reason,
          detail: checked.detail,
        });
        continue;
      }
      transfersOk++;
      copy = checked.copy;
      log.info('root-copy-loaded', {
        server: where,
        serial: copy.serial,
        records: copy.records,
        delegations: copy.delegations,
        expiresAt: copy.expiresAt,
      });
      return true;
    }
    return false;
  };

  const schedule = (ok: boolean): void => {
    if (closed) return;
    clearTimeout(timer);
    const now = init.now();
    const at = nextRefreshAt(current(), now, ok, init.refreshSeconds);
    const delayMs = Math.min(2 ** 31 - 1, Math.max(1000, (at - now) * 1000));
    timer = setTimeout(() => void refresh(), delayMs);
    timer.unref();
  };

  const refreshOnce = async (): Promise<RootCopyStatus> => {
    let ok = true;
    try {
      const c = current();
      const nearExpiry =
        c !== undefined && init.now() >= c.expiresAt - ROOT_COPY_EXPIRY_MARGIN_SECONDS;
      const serial = c === undefined || nearExpiry ? undefined : await serialNow();
      // RFC 1982 §3.2: only a serial greater than the copy's is a change worth a transfer.
      if (
        c !== undefined &&
        !nearExpiry &&
        serial !== undefined &&
        !serialGreater(serial, c.serial)
      ) {
        log.debug('root-copy-unchanged', { serial: c.serial });
      } else {
        ok = await load();
      }
    } catch (error) {
      ok = false;
      log.error('root-copy-refresh-failed', { error });
    }
    schedule(ok);
    return status();
  };

  const refresh = (): Promise<RootCopyStatus> => {
    if (closed) return Promise.resolve(status());
    running ??= refreshOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  void refresh();
  return {
    current,
    refresh,
    status,
    close() {
      closed = true;
      clearTimeout(timer);
      abort.abort();
    },
  };
}

/**
 * When to refresh next (seconds since the epoch), after a refresh at `now` that went `ok` or
 * not, with `copy` the copy in use then: without a copy, or after a failure, a retry in
 * max({@link ROOT_COPY_MIN_RETRY_SECONDS}, the SOA's retry); with one, the next serial check
 * (`refreshSeconds`, default the SOA's refresh), or the transfer
 * {@link ROOT_COPY_EXPIRY_MARGIN_SECONDS} before the copy's earliest RRSIG expiry when that comes
 * first — never sooner than a retry, so a root whose signatures are already that close to expiry
 * is not asked for its zone every second.
 *
 * Example: SOA refresh 3600, retry 600, the copy expiring at now + 86,400: next at now + 3600;
 * expiring at now + 3,000 instead: at now + 600.
 */
export function nextRefreshAt(
  copy: Pick<RootCopy, 'soa' | 'expiresAt'> | undefined,
  now: number,
  ok: boolean,
  refreshSeconds?: number,
): number {
  const retry = Math.max(ROOT_COPY_MIN_RETRY_SECONDS, copy?.soa.data.retry ?? 0);
  if (copy === undefined || !ok) return now + retry;
  const refresh = Math.max(1, refreshSeconds ?? copy.soa.data.refresh);
  const beforeExpiry = Math.max(copy.expiresAt - ROOT_COPY_EXPIRY_MARGIN_SECONDS, now + retry);
  return Math.min(now + refresh, beforeExpiry);
}

/** RFC 1982 §3.2: whether serial `a` is greater than `b`. */
export function serialGreater(a: number, b: number): boolean {
  const half = 2 ** 31;
  return (a < b && b - a > half) || (a > b && a - b < half);
}
