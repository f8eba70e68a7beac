import { encodeBase32Hex } from './base32hex.js';
import { ZoneError } from './errors.js';
import { canonicalName, compareNames, isSubdomain } from './names.js';
import type { ResourceRecord, RRType, SvcParams } from './records.js';
import { encodeRdata, typeToCode } from './wire.js';

/**
 * Master-file presentation (RFC 1035 §5.1) of every record type of the model, one record per
 * line with absolute names, as stock tools (`ldns-verify-zone`, `named-checkzone`, Unbound) read
 * them:
 *
 * ```
 * example.com. 3600 IN DNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=
 * x.example.com. 300 IN TYPE65400 \# 3 a16176
 * ```
 *
 * Standard types use their RFC forms (RRSIG times as YYYYMMDDHHmmSS in UTC, RFC 4034 §3.2; NSEC3
 * hashes in base32hex and an empty salt as `-`, RFC 5155 §3.3; SVCB as RFC 9460 §2.1; ZONEMD as RFC 8976 §2.3). MAP,
 * MAPREF, AUTHKEY, KEYCONF and types without a mnemonic use the RFC 3597 §5 generic form, type
 * and RDATA alike, since stock software knows nothing of the private types; the same goes for
 * their names inside RRSIG, NSEC and NSEC3 type fields. For the same reason the SVCB `ohttp`
 * key (RFC 9540 §4) is written in its generic form `key8` (RFC 9460 §2.1), which BIND 9.18,
 * NSD 4.6 and ldns 1.8 read while they refuse the mnemonic. The reader of this format is
 * `zone-file.ts`; it reads both forms.
 */

/** One record as a master-file line (without the newline). */
export function formatRecord(rr: ResourceRecord): string {
  const rdata = formatRdata(rr);
  const head = `${absoluteName(rr.name)} ${rr.ttl} ${rr.class} ${presentationType(rr.type)}`;
  return rdata === '' ? head : `${head} ${rdata}`;
}

/**
 * A whole zone as a master file without `$ORIGIN` or `$TTL`: the SOA at `origin` first, then the
 * other records in canonical order of owner (RFC 4034 §6.1), by type code within an owner, each
 * RRSIG after the RRset it covers; records of one RRset keep their given order. Throws
 * `ZoneError` unless there is exactly one SOA at the origin and every owner is in the zone.
 */
export function formatZone(origin: string, records: readonly ResourceRecord[]): string {
  const apex = canonicalName(origin);
  const soas: ResourceRecord[] = [];
  const rest: ResourceRecord[] = [];
  for (const rr of records) {
    if (!isSubdomain(rr.name, apex)) {
      throw new ZoneError(
        'ERR_ZONE_OUT_OF_ZONE',
        `record owner ${rr.name} is not in zone ${origin}`,
      );
    }
    if (rr.type === 'SOA' && canonicalName(rr.name) === apex) soas.push(rr);
    else rest.push(rr);
  }
  if (soas.length !== 1) {
    throw new ZoneError(
      soas.length === 0 ? 'ERR_ZONE_NO_SOA' : 'ERR_ZONE_SOA_COUNT',
      `zone ${origin} must have exactly one SOA record at its origin, found ${soas.length}`,
    );
  }
  rest.sort((a, b) => compareNames(a.name, b.name) || sortKey(a) - sortKey(b));
  return [...soas, ...rest].map((rr) => `${formatRecord(rr)}\n`).join('');
}

/** Type code, with an RRSIG placed right after the type it covers. */
function sortKey(rr: ResourceRecord): number {
  return rr.type === 'RRSIG' ? typeToCode(rr.data.typeCovered) * 2 + 1 : typeToCode(rr.type) * 2;
}

/** The RDATA of a record in presentation form (empty when it has no fields to show). */
export function formatRdata(rr: ResourceRecord): string {
  switch (rr.type) {
    case 'A':
    case 'AAAA':
      return rr.data;
    case 'NS':
    case 'CNAME':
      return absoluteName(rr.data);
    case 'TXT':
      return rr.data.map((s) => `"${escapeBytes(s, QUOTED_SPECIALS)}"`).join(' ');
    case 'SOA': {
      const d = rr.data;
      return `${absoluteName(d.mname)} ${absoluteName(d.rname)} ${d.serial} ${d.refresh} ${d.retry} ${d.expire} ${d.minimum}`;
    }
    case 'DS':
    case 'CDS':
      return `${rr.data.keyTag} ${rr.data.algorithm} ${rr.data.digestType} ${hex(rr.data.digest)}`;
    case 'DNSKEY':
    case 'CDNSKEY':
      return `${rr.data.flags} ${rr.data.protocol} ${rr.data.algorithm} ${base64(rr.data.publicKey)}`;
    case 'RRSIG': {
      const d = rr.data;
      return [
        presentationType(d.typeCovered),
        d.algorithm,
        d.labels,
        d.originalTtl,
        formatTime(d.expiration),
        formatTime(d.inception),
        d.keyTag,
        absoluteName(d.signerName),
        base64(d.signature),
      ].join(' ');
    }
    case 'NSEC':
      return [absoluteName(rr.data.nextName), ...rr.data.types.map(presentationType)].join(' ');
    case 'NSEC3': {
      const d = rr.data;
      return [
        d.hashAlgorithm,
        d.flags,
        d.iterations,
        salt(d.salt),
        encodeBase32Hex(d.nextHashedOwner),
        ...d.types.map(presentationType),
      ].join(' ');
    }
    case 'NSEC3PARAM':
      return `${rr.data.hashAlgorithm} ${rr.data.flags} ${rr.data.iterations} ${salt(rr.data.salt)}`;
    case 'SVCB':
      return [
        rr.data.priority,
        absoluteName(rr.data.target),
        ...formatSvcParams(rr.data.params),
      ].join(' ');
    case 'ZONEMD':
      // RFC 8976 §2.3: serial, scheme and hash algorithm in decimal, the digest in hex.
      return `${rr.data.serial} ${rr.data.scheme} ${rr.data.hashAlgorithm} ${hex(rr.data.digest)}`;
    case 'MAP':
    case 'MAPREF':
    case 'AUTHKEY':
    case 'KEYCONF':
    default:
      return genericRdata(encodeRdata(rr));
  }
}

/**
 * The type as stock software reads it: the mnemonic of a standard type, `TYPE<n>` (RFC 3597 §5)
 * for the private types and any type without one.
 */
export function presentationType(type: RRType): string {
  return PRIVATE_TYPES.has(type) ? `TYPE${typeToCode(type)}` : type;
}

/** The private types of design §4, which stock software knows only as `TYPE<n>`. */
const PRIVATE_TYPES: ReadonlySet<RRType> = new Set<RRType>(['MAP', 'MAPREF', 'AUTHKEY', 'KEYCONF']);

/**
 * SvcParamKey mnemonics that stock software of today does not read, written as `key<n>`
 * (RFC 9460 §2.1 allows either form): `ohttp` (RFC 9540 §4) is refused by BIND 9.18, NSD 4.6
 * and ldns 1.8.
 */
const GENERIC_SVC_KEYS: ReadonlyMap<string, string> = new Map([['ohttp', 'key8']]);

/** A name with its trailing dot; the root is `.`. */
export function absoluteName(name: string): string {
  if (name === '.' || name === '') return '.';
  return name.endsWith('.') && !name.endsWith('\\.') ? name : `${name}.`;
}

/** Seconds since the epoch as YYYYMMDDHHmmSS in UTC (RFC 4034 §3.2). */
export function formatTime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${String(d.getUTCFullYear()).padStart(4, '0')}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}`;
}

/** RFC 3597 §5: `\# <length> <hex>`, or `\# 0` for empty RDATA. */
function genericRdata(rdata: Uint8Array): string {
  return rdata.length === 0 ? '\\# 0' : `\\# ${rdata.length} ${hex(rdata)}`;
}

/**
 * SvcParams in presentation form (RFC 9460 §2.1, §7; RFC 9461 §5), in key order, as
 * `alpn=h2,http/1.1 port=443 dohpath=/dns-query{?dns}`.
 */
function formatSvcParams(params: SvcParams): string[] {
  const out: { key: number; text: string }[] = [];
  if (params.mandatory !== undefined) {
    const keys = params.mandatory.map((k) => GENERIC_SVC_KEYS.get(k) ?? k);
    out.push({ key: 0, text: `mandatory=${keys.join(',')}` });
  }
  if (params.alpn !== undefined) {
    // RFC 9460 Appendix A.1: commas and backslashes inside one ALPN id are escaped at the
    // value-list level, and the result once more as a character-string.
    const list = params.alpn.map((id) => id.replace(/[\\,]/g, (c) => `\\${c}`)).join(',');
    out.push({ key: 1, text: `alpn=${escapeBytes(utf8(list), UNQUOTED_SPECIALS)}` });
  }
  if (params.noDefaultAlpn === true) out.push({ key: 2, text: 'no-default-alpn' });
  if (params.port !== undefined) out.push({ key: 3, text: `port=${params.port}` });
  if (params.ipv4hint !== undefined)
    out.push({ key: 4, text: `ipv4hint=${params.ipv4hint.join(',')}` });
  if (params.ech !== undefined) out.push({ key: 5, text: `ech=${base64(params.ech)}` });
  if (params.ipv6hint !== undefined)
    out.push({ key: 6, text: `ipv6hint=${params.ipv6hint.join(',')}` });
  if (params.dohpath !== undefined) {
    out.push({ key: 7, text: `dohpath=${escapeBytes(utf8(params.dohpath), UNQUOTED_SPECIALS)}` });
  }
  if (params.ohttp === true) out.push({ key: 8, text: GENERIC_SVC_KEYS.get('ohttp') ?? 'ohttp' });
  for (const { key, value } of params.unknown ?? []) {
    out.push({
      key,
      text: value.length === 0 ? `key${key}` : `key${key}=${escapeBytes(value, UNQUOTED_SPECIALS)}`,
    });
  }
  return out.sort((a, b) => a.key - b.key).map((p) => p.text);
}

/** Octets escaped with a backslash inside a quoted character-string. */
const QUOTED_SPECIALS: ReadonlySet<number> = new Set([0x22, 0x5c]);
/** Octets escaped with a backslash in an unquoted one (RFC 1035 §5.1 specials). */
const UNQUOTED_SPECIALS: ReadonlySet<number> = new Set([0x22, 0x5c, 0x3b, 0x28, 0x29]);

/**
 * A character-string body (RFC 1035 §5.1): specials as `\c`, octets outside printable ASCII
 * as `\DDD`; a space is kept only inside quotes.
 */
function escapeBytes(bytes: Uint8Array, specials: ReadonlySet<number>): string {
  const quoted = specials === QUOTED_SPECIALS;
  let out = '';
  for (const b of bytes) {
    if (specials.has(b)) out += `\\${String.fromCharCode(b)}`;
    else if ((b > 0x20 && b < 0x7f) || (b === 0x20 && quoted)) out += String.fromCharCode(b);
    else out += `\\${String(b).padStart(3, '0')}`;
  }
  return out;
}

function salt(bytes: Uint8Array): string {
  return bytes.length === 0 ? '-' : hex(bytes);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}
