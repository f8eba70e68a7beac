import { computeDs, DNSKEY_FLAG_ZONE, DNSKEY_PROTOCOL } from './dnssec.js';
import { DnssecError } from './errors.js';
import { canonicalName, parseLabels } from './names.js';
import { absoluteName, formatRecord } from './presentation.js';
import { DNSSEC_ALGORITHM_ED25519, type DnskeyData, type DsData } from './records.js';

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
 * (RFC 1035 §5.1). Algorithms may be numbers or mnemonics (RFC 8624 §3.1). Throws `DnssecError`
 * `ERR_TRUST_ANCHOR_SYNTAX` naming the line of the first problem, or `ERR_TRUST_ANCHOR_EMPTY`
 * when the text holds no record.
 */
export function parseTrustAnchor(text: string): TrustAnchor {
  const anchor: TrustAnchor = { zone: '', ds: [], dnskeys: [] };
  let previousOwner: string | undefined;
  for (const entry of logicalRecords(text)) {
    const fail = (message: string): never => {
      throw new DnssecError(
        'ERR_TRUST_ANCHOR_SYNTAX',
        `trust anchor line ${entry.line}: ${message}`,
      );
    };
    const tokens = [...entry.tokens];
    let owner: string;
    if (entry.continued) {
      if (previousOwner === undefined) fail('record without an owner name');
      owner = previousOwner as string;
    } else {
      const first = tokens.shift() as string;
      if (first.startsWith('$')) fail(`directive ${first} is not supported; write absolute names`);
      if (first === '@') fail('@ needs an $ORIGIN; write the zone name');
      try {
        parseLabels(first);
      } catch (cause) {
        throw new DnssecError(
          'ERR_TRUST_ANCHOR_SYNTAX',
          `trust anchor line ${entry.line}: bad owner name ${first}`,
          { cause },
        );
      }
      owner = canonicalName(first);
    }
    previousOwner = owner;

    let type: string | undefined;
    for (let seen = 0; seen < 3; seen++) {
      const token = tokens.shift();
      if (token === undefined) fail('missing record type (DS or DNSKEY)');
      const upper = (token as string).toUpperCase();
      if (/^[0-9]+$/.test(upper)) continue; // TTL: validators ignore it
      if (upper === 'IN') continue;
      if (/^(CH|HS|CLASS[0-9]+)$/.test(upper)) fail(`class ${token} is not IN`);
      type = upper;
      break;
    }
    if (type !== 'DS' && type !== 'DNSKEY')
      fail(`expected DS or DNSKEY, found ${type ?? tokens[0]}`);

    if (anchor.zone === '') anchor.zone = owner;
    else if (anchor.zone !== owner) {
      fail(`record for ${owner}, but earlier records are for ${anchor.zone}: one zone per file`);
    }
    if (type === 'DS') anchor.ds.push(parseDs(tokens, fail));
    else anchor.dnskeys.push(parseDnskey(tokens, fail));
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

function parseDs(tokens: string[], fail: Fail): DsData {
  const keyTag = parseNumber(tokens.shift(), 0xffff, 'key tag', fail);
  const algorithm = parseAlgorithm(tokens.shift(), fail);
  const digestType = parseNumber(tokens.shift(), 0xff, 'digest type', fail);
  const hex = tokens.join('');
  if (hex === '' || !/^(?:[0-9a-fA-F]{2})+$/.test(hex))
    fail('DS digest must be hexadecimal octets');
  const digest = new Uint8Array(Buffer.from(hex, 'hex'));
  const expected = DIGEST_LENGTHS.get(digestType);
  if (expected !== undefined && digest.length !== expected) {
    fail(`DS digest type ${digestType} has ${expected} octets, found ${digest.length}`);
  }
  return { keyTag, algorithm, digestType, digest };
}

function parseDnskey(tokens: string[], fail: Fail): DnskeyData {
  const flags = parseNumber(tokens.shift(), 0xffff, 'flags', fail);
  const protocol = parseNumber(tokens.shift(), 0xff, 'protocol', fail);
  const algorithm = parseAlgorithm(tokens.shift(), fail);
  if (protocol !== DNSKEY_PROTOCOL) fail(`DNSKEY protocol must be 3, found ${protocol}`);
  if ((flags & DNSKEY_FLAG_ZONE) === 0) fail(`DNSKEY flags ${flags} lack the Zone Key bit (256)`);
  const text = tokens.join('');
  if (
    !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text) ||
    text === ''
  ) {
    fail('DNSKEY public key must be base64');
  }
  const publicKey = new Uint8Array(Buffer.from(text, 'base64'));
  if (algorithm === DNSSEC_ALGORITHM_ED25519 && publicKey.length !== 32) {
    fail(`an Ed25519 public key has 32 octets, found ${publicKey.length}`);
  }
  return { flags, protocol, algorithm, publicKey };
}

/** Algorithm mnemonics (RFC 8624 §3.1, IANA DNS Security Algorithm Numbers). */
const ALGORITHMS: ReadonlyMap<string, number> = new Map([
  ['RSAMD5', 1],
  ['DH', 2],
  ['DSA', 3],
  ['RSASHA1', 5],
  ['DSA-NSEC3-SHA1', 6],
  ['RSASHA1-NSEC3-SHA1', 7],
  ['RSASHA256', 8],
  ['RSASHA512', 10],
  ['ECC-GOST', 12],
  ['ECDSAP256SHA256', 13],
  ['ECDSAP384SHA384', 14],
  ['ED25519', 15],
  ['ED448', 16],
]);

function parseAlgorithm(token: string | undefined, fail: Fail): number {
  const named = token === undefined ? undefined : ALGORITHMS.get(token.toUpperCase());
  return named ?? parseNumber(token, 0xff, 'algorithm', fail);
}

function parseNumber(token: string | undefined, max: number, what: string, fail: Fail): number {
  if (token === undefined) return fail(`missing ${what}`);
  if (!/^[0-9]+$/.test(token) || Number(token) > max) {
    return fail(`${what} must be a number 0..${max}, found ${token}`);
  }
  return Number(token);
}

/** One record of the text: its tokens, the line it starts on, whether its owner is omitted. */
interface LogicalRecord {
  tokens: string[];
  line: number;
  continued: boolean;
}

/**
 * Splits master-file text into records (RFC 1035 §5.1): `;` starts a comment, parentheses join
 * lines, `(` and `)` need no surrounding space. Quoted strings do not occur in DS or DNSKEY
 * records and are not recognized.
 */
function logicalRecords(text: string): LogicalRecord[] {
  const records: LogicalRecord[] = [];
  let current: LogicalRecord | undefined;
  let depth = 0;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const body = raw.replace(/;.*$/, '');
    const tokens = body.split(/([()])|\s+/).filter((t): t is string => t !== undefined && t !== '');
    if (depth === 0) {
      if (tokens.length === 0) return;
      current = { tokens: [], line, continued: /^\s/.test(body) };
      records.push(current);
    }
    for (const token of tokens) {
      if (token === '(') depth++;
      else if (token === ')') {
        if (depth === 0) {
          throw new DnssecError(
            'ERR_TRUST_ANCHOR_SYNTAX',
            `trust anchor line ${line}: unbalanced )`,
          );
        }
        depth--;
      } else current?.tokens.push(token);
    }
  });
  if (depth > 0 && current !== undefined) {
    throw new DnssecError(
      'ERR_TRUST_ANCHOR_SYNTAX',
      `trust anchor line ${current.line}: ( is never closed`,
    );
  }
  return records.filter((r) => r.tokens.length > 0);
}
