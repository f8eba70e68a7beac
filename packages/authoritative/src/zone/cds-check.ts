import {
  computeDs,
  computeKeyTag,
  dsMatchesDnskey,
  namesEqual,
  verifyRRset,
  DNSKEY_FLAG_REVOKE,
  DNSKEY_FLAG_ZONE,
  DNSKEY_PROTOCOL,
  DNSSEC_ALGORITHM_ED25519,
  DS_DIGEST_SHA256,
  type DnskeyData,
  type DsData,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';

/**
 * The parent's check of what a child publishes in CDS and CDNSKEY (RFC 7344, RFC 8078), as the
 * parental agent of RFC 7344 §4.1 makes it: pure, over the answers already fetched from each of
 * the child's nameservers (`cds-fetch.ts`), so that every rule is tested without a network.
 *
 * Worked example: the parent holds `child DS 1111 15 2 …` (K1). Every nameserver of the child
 * answers DNSKEY {K1, K2} signed by K1 and K2, and CDS {DS(K1), DS(K2)} signed by K1 and K2. K1
 * is in the DNSKEY RRset and the DS RRset, so it validates the DNSKEY RRset and the CDS RRset
 * (RFC 7344 §4.1, "Signer"); every nameserver agrees (§6.1); the new DS set matches K1 and K2,
 * both of which sign the DNSKEY RRset (§4.1, "Continuity"); the CDS's RRSIG inception is newer
 * than the last one accepted for the child (§6.1, replay): the parent replaces its DS RRset with
 * {DS(K1), DS(K2)}. Had the CDS been signed by K2 alone — a key the current DS does not name — it
 * would be ignored, whoever served it.
 */

/** Most records of one RRset (DNSKEY, CDS or CDNSKEY) a child may answer with. */
export const MAX_CDS_RRSET_RECORDS = 16;
/**
 * Most RRSIGs per RRset tried, and so most signature verifications per RRset and key (KeyTrap,
 * CVE-2023-50387: a hostile child must not make the parent verify without end).
 */
export const MAX_CDS_SIGNATURES = 8;
/**
 * Most signature verifications per RRset, whatever keys share a key tag: bounds the work one
 * child's answer can cost the parent (KeyTrap again).
 */
export const MAX_CDS_VERIFICATIONS = 16;
/** DS digest types the parent accepts from a CDS: SHA-256 and SHA-384 (RFC 8624 §3.3: not SHA-1). */
export const CDS_DIGEST_TYPES: ReadonlySet<number> = new Set([DS_DIGEST_SHA256, 4]);

/** One RRset of the child's apex as one nameserver answered it, with the RRSIGs covering it. */
export interface FetchedRRset<T extends 'DNSKEY' | 'CDS' | 'CDNSKEY'> {
  records: RecordOf<T>[];
  rrsigs: RecordOf<'RRSIG'>[];
}

/** What one nameserver of the child answered for DNSKEY, CDS and CDNSKEY at the child's apex. */
export interface ServerAnswers {
  /** The server, `address:port`, for logs. */
  server: string;
  dnskey: FetchedRRset<'DNSKEY'>;
  cds: FetchedRRset<'CDS'>;
  cdnskey: FetchedRRset<'CDNSKEY'>;
}

/** Why a child's CDS or CDNSKEY is not acted on (each the label of a metric). */
export type CdsRejection =
  /** A nameserver did not answer, or not with an authoritative answer. */
  | 'unreachable'
  /** An RRset larger than {@link MAX_CDS_RRSET_RECORDS}. */
  | 'too-large'
  /** The DNSKEY RRset is not signed by a key that the current DS names (RFC 4035 §5.2). */
  | 'bogus'
  /** A CDS or CDNSKEY RRset is not signed by a key of both the DNSKEY and the DS RRsets. */
  | 'signer'
  /** The nameservers do not all serve the same CDS and CDNSKEY (RFC 7344 §6.1). */
  | 'disagree'
  /** CDS and CDNSKEY both present and naming different keys, or a delete mixed with keys. */
  | 'inconsistent'
  /** A key algorithm or digest type this parent does not take (not Ed25519, SHA-1). */
  | 'unsupported'
  /** The new DS set would match no key that signs the child's DNSKEY RRset (RFC 7344 §4.1). */
  | 'breaks-chain'
  /** The CDS's signature is not newer than the last one accepted (RFC 7344 §6.1). */
  | 'replay'
  /** A delete request (RFC 8078 §4) while `cds.allowDelete` is off. */
  | 'delete-refused';

/** The outcome of {@link checkChildCds}. */
export type CdsCheck =
  /** The child publishes neither CDS nor CDNSKEY: nothing to do (RFC 7344 §4.1). */
  | { kind: 'no-cds' }
  /** The CDS names exactly the current DS set. */
  | { kind: 'unchanged'; inception: number }
  /** Replace the DS RRset with `ds`. */
  | { kind: 'update'; ds: DsData[]; inception: number }
  /** Remove the DS RRset (RFC 8078 §4; only with `allowDelete`). */
  | { kind: 'delete'; inception: number }
  | { kind: 'rejected'; reason: CdsRejection; detail: string };

/** What {@link checkChildCds} decides on. */
export interface CdsCheckInput {
  /** The child zone (canonical). */
  zone: string;
  /** The DS RRset the parent holds now. */
  currentDs: readonly DsData[];
  /** One entry per nameserver address of the child; every one of them must have answered. */
  answers: readonly ServerAnswers[];
  /** Seconds since the epoch. */
  now: number;
  /** The RRSIG inception of the last CDS/CDNSKEY accepted for the child, if any. */
  lastInception: number | undefined;
  /** Whether a delete request may remove the DS RRset. */
  allowDelete: boolean;
}

/** What one nameserver's answers prove, once validated. */
interface ServerVerdict {
  server: string;
  /** Keys of the DNSKEY RRset that sign it (a validator can start the chain at any of them). */
  chainKeys: DnskeyData[];
  cds: DsData[] | undefined;
  cdnskey: DnskeyData[] | undefined;
  /** The newest inception among the validating RRSIGs of CDS and CDNSKEY (the older of the two). */
  inception: number | undefined;
}

type Rejected = Extract<CdsCheck, { kind: 'rejected' }>;

function rejected(reason: CdsRejection, detail: string): Rejected {
  return { kind: 'rejected', reason, detail };
}

/**
 * Decides what the parent does with a child's CDS and CDNSKEY, per RFC 7344 §4.1 and §6.1 and
 * RFC 8078: every nameserver's DNSKEY RRset validates from the current DS; its CDS and CDNSKEY
 * RRsets are signed by a key of that RRset that the current DS names; every nameserver serves
 * the same CDS and CDNSKEY; CDS and CDNSKEY agree when both are there; the new DS set leaves a
 * chain (it matches a key that signs the DNSKEY RRset at every nameserver); the signatures are
 * newer than the last accepted; a delete only with `allowDelete`. No bootstrapping: a child
 * with no current DS is never checked (the caller skips it).
 */
export function checkChildCds(input: CdsCheckInput): CdsCheck {
  if (input.answers.length === 0) return rejected('unreachable', 'no nameserver to ask');
  const verdicts: ServerVerdict[] = [];
  for (const answer of input.answers) {
    const verdict = checkServer(input, answer);
    if ('kind' in verdict) return verdict;
    verdicts.push(verdict);
  }
  const first = verdicts[0] as ServerVerdict;
  // RFC 7344 §6.1: act only when every nameserver serves the same CDS/CDNSKEY, so that one
  // compromised or stale server cannot choose the DS.
  const cdsKey = dsSetKey(first.cds);
  const cdnskeyKey = dnskeySetKey(first.cdnskey);
  for (const v of verdicts.slice(1)) {
    if (dsSetKey(v.cds) !== cdsKey || dnskeySetKey(v.cdnskey) !== cdnskeyKey) {
      return rejected('disagree', `${first.server} and ${v.server} serve different CDS/CDNSKEY`);
    }
  }
  if (first.cds === undefined && first.cdnskey === undefined) return { kind: 'no-cds' };
  // The oldest of the servers' inceptions: a replay at one server cannot be hidden by another.
  const inception = Math.min(...verdicts.map((v) => v.inception ?? 0));

  const wanted = wantedDs(input.zone, first.cds, first.cdnskey);
  if (wanted.kind === 'rejected') return wanted;
  if (wanted.kind === 'delete') {
    if (!input.allowDelete) {
      return rejected('delete-refused', 'the child asks for its DS to be removed (RFC 8078 §4)');
    }
    if (isReplay(input.lastInception, inception)) return replay(input.lastInception, inception);
    return { kind: 'delete', inception };
  }
  // RFC 7344 §4.1, Continuity: the new DS set must match a key that signs the DNSKEY RRset,
  // at every nameserver, or validators would find no chain once the parent switches.
  for (const v of verdicts) {
    const continues = wanted.ds.some((ds) =>
      v.chainKeys.some((k) => dsMatchesDnskey(input.zone, ds, k)),
    );
    if (!continues) {
      return rejected(
        'breaks-chain',
        `no DS of the CDS matches a key that signs the DNSKEY RRset at ${v.server}`,
      );
    }
  }
  if (dsSetKey(wanted.ds) === dsSetKey([...input.currentDs])) {
    return { kind: 'unchanged', inception };
  }
  if (isReplay(input.lastInception, inception)) return replay(input.lastInception, inception);
  return { kind: 'update', ds: wanted.ds, inception };
}

function isReplay(last: number | undefined, inception: number): boolean {
  return last !== undefined && inception <= last;
}

function replay(last: number | undefined, inception: number): Rejected {
  return rejected(
    'replay',
    `signature inception ${inception} is not newer than the last accepted (${last ?? 'none'})`,
  );
}

/** Validates one nameserver's DNSKEY, CDS and CDNSKEY answers (RFC 7344 §4.1, RFC 4035 §5). */
function checkServer(input: CdsCheckInput, answer: ServerAnswers): ServerVerdict | Rejected {
  const { zone, now } = input;
  const where = answer.server;
  for (const [type, set] of [
    ['DNSKEY', answer.dnskey],
    ['CDS', answer.cds],
    ['CDNSKEY', answer.cdnskey],
  ] as const) {
    if (set.records.length > MAX_CDS_RRSET_RECORDS) {
      return rejected(
        'too-large',
        `${where} answered ${set.records.length} ${type} records (at most ${MAX_CDS_RRSET_RECORDS})`,
      );
    }
  }
  const dnskeys = answer.dnskey.records.map((r) => r.data);
  if (dnskeys.length === 0) return rejected('bogus', `${where} serves no DNSKEY for ${zone}`);
  const usable = dnskeys.filter(isUsableZoneKey);
  // The keys of the DNSKEY RRset that the current DS names: the only ones trusted (RFC 4035 §5.2).
  const trusted = usable.filter((k) => input.currentDs.some((ds) => dsMatchesDnskey(zone, ds, k)));
  const dnskeySigners = signingKeys(zone, answer.dnskey.records, answer.dnskey.rrsigs, usable, now);
  if (!dnskeySigners.keys.some((k) => trusted.includes(k))) {
    return rejected(
      'bogus',
      `the DNSKEY RRset at ${where} is not signed by a key the current DS names`,
    );
  }
  let inception: number | undefined;
  const signedSet = <T extends 'CDS' | 'CDNSKEY'>(
    type: T,
    set: FetchedRRset<T>,
  ): RecordOf<T>['data'][] | undefined | Rejected => {
    if (set.records.length === 0) return undefined;
    // RFC 7344 §4.1, Signer: signed by a key in both the DNSKEY RRset and the current DS RRset.
    const signers = signingKeys(zone, set.records, set.rrsigs, trusted, now);
    if (signers.keys.length === 0) {
      return rejected(
        'signer',
        `the ${type} RRset at ${where} is not signed by a key the current DS names`,
      );
    }
    inception =
      inception === undefined ? signers.inception : Math.min(inception, signers.inception);
    return set.records.map((r) => (r as { data: RecordOf<T>['data'] }).data);
  };
  const cds = signedSet('CDS', answer.cds);
  if (cds !== undefined && 'kind' in cds) return cds;
  const cdnskey = signedSet('CDNSKEY', answer.cdnskey);
  if (cdnskey !== undefined && 'kind' in cdnskey) return cdnskey;
  return { server: where, chainKeys: dnskeySigners.keys, cds, cdnskey, inception };
}

/** An Ed25519 zone key of protocol 3 without REVOKE: the only kind that validates here. */
function isUsableZoneKey(k: DnskeyData): boolean {
  return (
    k.protocol === DNSKEY_PROTOCOL &&
    k.algorithm === DNSSEC_ALGORITHM_ED25519 &&
    (k.flags & DNSKEY_FLAG_ZONE) !== 0 &&
    (k.flags & DNSKEY_FLAG_REVOKE) === 0
  );
}

/**
 * The keys among `candidates` with an RRSIG over `records` that verifies now, signed by the zone
 * itself, and the newest inception among those RRSIGs. At most {@link MAX_CDS_SIGNATURES}
 * RRSIGs are looked at, each tried only with the candidates of its key tag, and at most
 * {@link MAX_CDS_VERIFICATIONS} verifications made in all.
 */
function signingKeys(
  zone: string,
  records: readonly ResourceRecord[],
  rrsigs: readonly RecordOf<'RRSIG'>[],
  candidates: readonly DnskeyData[],
  now: number,
): { keys: DnskeyData[]; inception: number } {
  const keys: DnskeyData[] = [];
  let inception = 0;
  let verifications = 0;
  for (const rrsig of rrsigs.slice(0, MAX_CDS_SIGNATURES)) {
    // The signer must be the child itself: a key of another zone never speaks for its apex.
    if (!namesEqual(rrsig.data.signerName, zone)) continue;
    for (const k of candidates) {
      if (computeKeyTag(k) !== rrsig.data.keyTag) continue;
      if (++verifications > MAX_CDS_VERIFICATIONS) return { keys, inception };
      if (verifyRRset(records, rrsig, [k], now).kind !== 'verified') continue;
      if (!keys.includes(k)) keys.push(k);
      inception = Math.max(inception, rrsig.data.inception);
    }
  }
  return { keys, inception };
}

/** RFC 8078 §4: the CDS that asks for the DS to be removed, `0 0 0 00`. */
function isDeleteCds(ds: DsData): boolean {
  return ds.keyTag === 0 && ds.algorithm === 0 && ds.digestType === 0;
}

/** RFC 8078 §4: the CDNSKEY that asks for the DS to be removed, `0 3 0 AA==`. */
function isDeleteCdnskey(k: DnskeyData): boolean {
  return k.flags === 0 && k.algorithm === 0;
}

/** The DS set the child asks for, from its CDS, else its CDNSKEY (digest SHA-256). */
function wantedDs(
  zone: string,
  cds: DsData[] | undefined,
  cdnskey: DnskeyData[] | undefined,
): { kind: 'delete' } | { kind: 'ds'; ds: DsData[] } | Rejected {
  const cdsDelete = cds?.some(isDeleteCds) ?? false;
  const cdnskeyDelete = cdnskey?.some(isDeleteCdnskey) ?? false;
  if (cdsDelete || cdnskeyDelete) {
    // RFC 8078 §4: a delete request stands alone, in every RRset the child publishes.
    const alone =
      (cds === undefined || (cds.length === 1 && cdsDelete)) &&
      (cdnskey === undefined || (cdnskey.length === 1 && cdnskeyDelete));
    if (!alone) {
      return rejected('inconsistent', 'a delete request (RFC 8078 §4) published beside keys');
    }
    return { kind: 'delete' };
  }
  for (const ds of cds ?? []) {
    if (ds.algorithm !== DNSSEC_ALGORITHM_ED25519 || !CDS_DIGEST_TYPES.has(ds.digestType)) {
      return rejected(
        'unsupported',
        `CDS ${ds.keyTag} ${ds.algorithm} ${ds.digestType}: only algorithm 15 with digest type 2 or 4`,
      );
    }
  }
  for (const k of cdnskey ?? []) {
    if (!isUsableZoneKey(k)) {
      return rejected(
        'unsupported',
        `CDNSKEY ${k.flags} ${k.protocol} ${k.algorithm}: only Ed25519 zone keys`,
      );
    }
  }
  if (cds !== undefined && cdnskey !== undefined) {
    // Both published: they must name the same keys, or the child is mid-change or mistaken.
    const consistent =
      cds.every((ds) => cdnskey.some((k) => dsMatchesDnskey(zone, ds, k))) &&
      cdnskey.every((k) => cds.some((ds) => dsMatchesDnskey(zone, ds, k)));
    if (!consistent) return rejected('inconsistent', 'CDS and CDNSKEY name different keys');
  }
  const ds = cds ?? (cdnskey ?? []).map((k) => computeDs(zone, k, DS_DIGEST_SHA256));
  return { kind: 'ds', ds: uniqueDs(ds) };
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function dsText(ds: DsData): string {
  return `${ds.keyTag} ${ds.algorithm} ${ds.digestType} ${hex(ds.digest)}`;
}

function uniqueDs(list: readonly DsData[]): DsData[] {
  const seen = new Map<string, DsData>();
  for (const ds of list) seen.set(dsText(ds), ds);
  return [...seen.values()];
}

/** A set of DS RDATA as one comparable string (order and duplicates do not matter). */
export function dsSetKey(list: readonly DsData[] | undefined): string {
  if (list === undefined) return '-';
  return [...new Set(list.map(dsText))].sort().join('|');
}

function dnskeySetKey(list: readonly DnskeyData[] | undefined): string {
  if (list === undefined) return '-';
  return [
    ...new Set(list.map((k) => `${k.flags} ${k.protocol} ${k.algorithm} ${hex(k.publicKey)}`)),
  ]
    .sort()
    .join('|');
}
