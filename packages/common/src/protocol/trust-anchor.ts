import { computeDs, DNSKEY_FLAG_ZONE, DNSKEY_PROTOCOL } from './dnssec.js';
import { DnssecError } from './errors.js';
import { canonicalName } from './names.js';
import { absoluteName, formatRecord } from './presentation.js';
import { DNSSEC_ALGORITHM_ED25519, type DnskeyData, type DsData } from './records.js';
import { readZoneFile, ZoneFileError, type ZoneFileEntry } from './zone-file.js';

/**
 * The trust anchor of a zone (design §5): the DS and/or DNSKEY RDATA a validator starts from,
 * kept in a file in standard presentation format as Unbound keeps its `root.key`:
 *
 * ```
 * ; trust anchor of mimi.arpa
 * mimi.arpa. 3600 IN DS 3613 15 2 3aa5ab37efce57f737fc1627013fee07bdf241bd10f3b1964ab55c78e79a304b
 * mimi.arpa. 3600 IN DNSKEY 257 3 15 (
 *     l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4= )
 * ```
 *
 * `formatTrustAnchor` writes such records, one per line (Unbound's `trust-anchor-file` and
 * `auto-trust-anchor-file` read them); `formatBindTrustAnchors` writes the `trust-anchors { };`
 * statement that BIND's `delv -a` and `named` read; `parseTrustAnchor` reads the former back.
 */

/** DS and DNSKEY RDATA trusted for one zone. */
export interface TrustAnchor {
  /** The zone (canonical form). */
  zone: string;
  ds: DsData[];
  dnskeys: DnskeyData[];
}

/** The trust anchor of a zone from its DNSKEYs: each key and its SHA-256 DS. */
export function createTrustAnchor(zone: string, dnskeys: readonly DnskeyData[]): TrustAnchor {
  const name = canonicalName(zone);
  return { zone: name, ds: dnskeys.map((k) => computeDs(name, k)), dnskeys: [...dnskeys] };
}

/** Options of {@link formatTrustAnchor}. */
export interface FormatTrustAnchorOptions {
  /** TTL written on each line (validators ignore it); default 3600. */
  ttl?: number;
}

/** A trust anchor as master-file lines, DS records first, each line ending in a newline. */
export function formatTrustAnchor(
  anchor: TrustAnchor,
  options: FormatTrustAnchorOptions = {},
): string {
  const ttl = options.ttl ?? 3600;
  const lines = [
    ...anchor.ds.map((data) =>
      formatRecord({ name: anchor.zone, type: 'DS', class: 'IN', ttl, data }),
    ),
    ...anchor.dnskeys.map((data) =>
      formatRecord({ name: anchor.zone, type: 'DNSKEY', class: 'IN', ttl, data }),
    ),
  ];
  return lines.map((line) => `${line}\n`).join('');
}

/**
 * Trust anchors as a BIND `trust-anchors` statement (BIND 9.15+), which `delv -a <file>` and
 * `named` read:
 *
 * ```
 * trust-anchors {
 *   "example.com." static-ds 3613 15 2 "3aa5ab37…";
 *   "example.com." static-key 257 3 15 "l02Woi0i…";
 * };
 * ```
 *
 * `delv` trusts only the root unless told otherwise: query with `+root=<zone>` for another zone.
 */
export function formatBindTrustAnchors(anchors: TrustAnchor | readonly TrustAnchor[]): string {
  const list: readonly TrustAnchor[] = Array.isArray(anchors) ? anchors : [anchors as TrustAnchor];
  const lines: string[] = [];
  for (const anchor of list) {
    const zone = bindString(absoluteName(anchor.zone));
    for (const ds of anchor.ds) {
      lines.push(
        `  ${zone} static-ds ${ds.keyTag} ${ds.algorithm} ${ds.digestType} "${Buffer.from(ds.digest).toString('hex')}";`,
      );
    }
    for (const key of anchor.dnskeys) {
      lines.push(
        `  ${zone} static-key ${key.flags} ${key.protocol} ${key.algorithm} "${Buffer.from(key.publicKey).toString('base64')}";`,
      );
    }
  }
  return `trust-anchors {\n${lines.map((l) => `${l}\n`).join('')}};\n`;
}

function bindString(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/**
 * Reads a trust anchor in master-file form: DS and DNSKEY records of one zone, each
 * `owner [TTL] [class] TYPE rdata` (TTL and class in either order, class IN), owner names taken
 * as absolute with or without the trailing dot, a line starting with white space reusing the
 * previous owner, `;` comments, blank lines, and records spread over lines in parentheses
 * (RFC 1035 §5.1). Algorithms may be numbers or mnemonics (RFC 8624 §3.1). The text is read by
 * the master-file reader (`zone-file.ts`) without directives. Throws `DnssecError`
 * `ERR_TRUST_ANCHOR_SYNTAX` naming the line of the first problem, or `ERR_TRUST_ANCHOR_EMPTY`
 * when the text holds no record.
 */
export function parseTrustAnchor(text: string): TrustAnchor {
  let entries: ZoneFileEntry[];
  try {
    // TTLs are read but not kept: validators ignore them.
    entries = readZoneFile(text, { defaultTtl: 0, directives: false, bareNamesAbsolute: true });
  } catch (cause) {
    if (!(cause instanceof ZoneFileError)) throw cause;
    throw new DnssecError('ERR_TRUST_ANCHOR_SYNTAX', `trust anchor ${cause.message}`, { cause });
  }
  const anchor: TrustAnchor = { zone: '', ds: [], dnskeys: [] };
  for (const { record: rr, line } of entries) {
    const fail: Fail = (message) => {
      throw new DnssecError('ERR_TRUST_ANCHOR_SYNTAX', `trust anchor line ${line}: ${message}`);
    };
    if (rr.class !== 'IN') fail(`class ${rr.class} is not IN`);
    if (rr.type !== 'DS' && rr.type !== 'DNSKEY') fail(`expected DS or DNSKEY, found ${rr.type}`);
    const owner = canonicalName(rr.name);
    if (anchor.zone === '') anchor.zone = owner;
    else if (anchor.zone !== owner) {
      fail(`record for ${owner}, but earlier records are for ${anchor.zone}: one zone per file`);
    }
    if (rr.type === 'DS') anchor.ds.push(checkDs(rr.data, fail));
    else if (rr.type === 'DNSKEY') anchor.dnskeys.push(checkDnskey(rr.data, fail));
  }
  if (anchor.zone === '') {
    throw new DnssecError('ERR_TRUST_ANCHOR_EMPTY', 'trust anchor holds no DS or DNSKEY record');
  }
  return anchor;
}

type Fail = (message: string) => never;

/** Expected digest length by DS digest type (RFC 4034 §5.1.4, RFC 4509, RFC 6605). */
const DIGEST_LENGTHS: ReadonlyMap<number, number> = new Map([
  [1, 20],
  [2, 32],
  [4, 48],
]);

function checkDs(ds: DsData, fail: Fail): DsData {
  const expected = DIGEST_LENGTHS.get(ds.digestType);
  if (expected !== undefined && ds.digest.length !== expected) {
    fail(`DS digest type ${ds.digestType} has ${expected} octets, found ${ds.digest.length}`);
  }
  return ds;
}

function checkDnskey(key: DnskeyData, fail: Fail): DnskeyData {
  if (key.protocol !== DNSKEY_PROTOCOL) fail(`DNSKEY protocol must be 3, found ${key.protocol}`);
  if ((key.flags & DNSKEY_FLAG_ZONE) === 0) {
    fail(`DNSKEY flags ${key.flags} lack the Zone Key bit (256)`);
  }
  if (key.algorithm === DNSSEC_ALGORITHM_ED25519 && key.publicKey.length !== 32) {
    fail(`an Ed25519 public key has 32 octets, found ${key.publicKey.length}`);
  }
  return key;
}
