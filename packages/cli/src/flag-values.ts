import { isIP } from 'node:net';
import {
  canonicalName,
  checkPreferenceTags,
  DNSSEC_ALGORITHM_ED25519,
  isContext,
  DS_DIGEST_SHA256,
  parseLabels,
  parseRange,
  type DsData,
  type MspEntry,
} from '@mimi-discovery/common';
import type { NameserverSpec } from '@mimi-discovery/authoritative';
import { InvalidArgumentError } from 'commander';
import { parseFlag, usageError } from './errors.js';

/**
 * Parsers of flag values, each checking one kind of value where it enters (style: validate at
 * the boundary). Those that need nothing but the text are commander argument parsers and throw
 * `InvalidArgumentError` (a usage error, exit 1); those that need the config (a range under its
 * apex) run in the command and throw through `parseFlag`, keeping the parser's code.
 */

/** A port to listen on, 0–65535 (0: ephemeral). */
export function listenPort(value: string): number {
  return integer(value, 0, 65535, 'expected a port number 0–65535');
}

/** A port to connect to, 1–65535. */
export function remotePort(value: string): number {
  return integer(value, 1, 65535, 'expected a port number 1–65535');
}

/** An unsigned 32-bit number (`seq`). */
export function unsigned(value: string): number {
  return integer(value, 0, 2 ** 32 - 1, 'expected a whole number 0–4294967295');
}

/** A number of days, 1–3650. */
export function days(value: string): number {
  return integer(value, 1, 3650, 'expected a whole number of days 1–3650');
}

function integer(value: string, min: number, max: number, message: string): number {
  const n = /^[0-9]+$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(message);
  return n;
}

/** Collects the values of a flag given more than once. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[]) => T[] {
  return (value, previous) => [...previous, parse(value)];
}

/** The same value, for {@link collect} of plain strings. */
export function text(value: string): string {
  return value;
}

/**
 * A host-style domain name in canonical form (`NS1.Example.` → `ns1.example`): labels of
 * letters, digits, `-` and `_` (RFC 1123 §2.1, plus `_` for names such as `_dns`). The DNS
 * allows any octet in a label, but every name given on this command line — apex, nameserver,
 * MSP provider, MAPREF target — is a host or zone name, and a space in one is a typing mistake.
 */
export function domainName(value: string): string {
  const name = value.endsWith('.') ? value.slice(0, -1) : value;
  const labels = name.split('.');
  const bad = labels.find((l) => !/^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(l));
  if (name === '' || bad !== undefined) {
    throw new InvalidArgumentError(
      name === ''
        ? 'not a domain name (the root is not allowed)'
        : `not a domain name (label ${JSON.stringify(bad)})`,
    );
  }
  try {
    parseLabels(name);
  } catch (error) {
    throw new InvalidArgumentError(
      `not a domain name (${error instanceof Error ? error.message : String(error)})`,
    );
  }
  return canonicalName(name);
}

/** An IPv4 or IPv6 address. */
export function ipAddress(value: string): string {
  if (isIP(value) === 0) throw new InvalidArgumentError('expected an IPv4 or IPv6 address');
  return value;
}

/**
 * Whether a listen host is one IP address that others can reach, and so can be published as
 * glue or in hints: not a host name, and not `0.0.0.0` or `::`, which bind every address.
 */
export function isPublishableAddress(host: string): boolean {
  return isIP(host) !== 0 && host !== '0.0.0.0' && host !== '::';
}

/** A host to listen on: an IP address or a host name (as the config accepts). */
export function listenHost(value: string): string {
  if (isIP(value) !== 0) return value;
  domainName(value);
  return value;
}

/**
 * A nameserver as `NAME=ADDR[,ADDR]` (`ns1.4.4.e164.mimi.arpa=127.0.0.1,::1`), or just `NAME`
 * for a nameserver outside the parent zone, which needs no glue.
 */
export function nameserver(value: string): NameserverSpec {
  const at = value.indexOf('=');
  const name = domainName(at < 0 ? value : value.slice(0, at));
  const list = at < 0 ? [] : value.slice(at + 1).split(',');
  const addresses = list.map((a) => a.trim()).filter((a) => a !== '');
  for (const address of addresses) {
    if (isIP(address) === 0) throw new InvalidArgumentError(`${address} is not an IP address`);
  }
  if (at >= 0 && addresses.length === 0) {
    throw new InvalidArgumentError('expected NAME=ADDRESS[,ADDRESS]');
  }
  return { name, addresses };
}

/**
 * A mailbox as `LOCAL@DOMAIN` (`hostmaster@example.org`) in the form of a SOA RNAME
 * (`hostmaster.example.org`), in canonical form: RFC 1035 §8 puts the local part in the first
 * label, with a dot in it escaped (`john.doe@example.org` → `john\.doe.example.org`, RFC 1912
 * §2.2). The local part is kept to letters, digits, `_`, `+`, `-` and inner dots: characters
 * that need no quoting in a zone file.
 */
export function soaContact(value: string): string {
  const at = value.lastIndexOf('@');
  const usage = 'expected a mailbox such as hostmaster@example.org';
  if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError(usage);
  const local = value.slice(0, at).toLowerCase();
  if (!/^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*$/.test(local) || local.length > 63) {
    throw new InvalidArgumentError(
      `${usage} (the part before @ may hold letters, digits, _, +, - and inner dots, at most 63)`,
    );
  }
  return `${local.replace(/\./g, '\\.')}.${domainName(value.slice(at + 1))}`;
}

/** Octets of a DS digest, by digest type (RFC 4034 §5.1.4, RFC 4509, RFC 6605). */
const DIGEST_OCTETS: ReadonlyMap<number, number> = new Map([
  [1, 20],
  [2, 32],
  [4, 48],
]);

/**
 * DS RDATA as `KEYTAG ALGORITHM DIGESTTYPE HEX` (`53568 15 2 0a90…`), or a whole DS record as
 * `ds` prints it (`4.4.e164.mimi.arpa. 3600 IN DS 53568 15 2 0a90…`), whose RDATA is taken.
 */
export function dsData(value: string): DsData {
  const tokens = value.trim().split(/\s+/);
  const ds = tokens.findIndex((t) => t.toUpperCase() === 'DS');
  const [keyTag, algorithm, digestType, ...hex] = ds >= 0 ? tokens.slice(ds + 1) : tokens;
  const usage = 'expected "KEYTAG ALGORITHM DIGESTTYPE HEX", e.g. "53568 15 2 0a90…"';
  if (keyTag === undefined || algorithm === undefined || digestType === undefined) {
    throw new InvalidArgumentError(usage);
  }
  const digest = hex.join('');
  if (hex.length === 0 || !/^(?:[0-9a-fA-F]{2})+$/.test(digest)) {
    throw new InvalidArgumentError(`${usage}; the digest must be hexadecimal`);
  }
  const data: DsData = {
    keyTag: integer(keyTag, 0, 65535, 'the key tag must be 0–65535'),
    algorithm: integer(algorithm, 0, 255, 'the algorithm must be 0–255'),
    digestType: integer(digestType, 0, 255, 'the digest type must be 0–255'),
    digest: new Uint8Array(Buffer.from(digest, 'hex')),
  };
  const octets = DIGEST_OCTETS.get(data.digestType);
  if (octets !== undefined && data.digest.length !== octets) {
    throw new InvalidArgumentError(
      `a digest of type ${data.digestType} has ${octets} octets, found ${data.digest.length}`,
    );
  }
  if (data.algorithm !== DNSSEC_ALGORITHM_ED25519 || data.digestType !== DS_DIGEST_SHA256) {
    // Design §5: every zone of the network is signed with Ed25519 and its DS is SHA-256; any
    // other DS would name a key no zone of ours has.
    throw new InvalidArgumentError(
      `expected algorithm ${DNSSEC_ALGORITHM_ED25519} (Ed25519) and digest type ${DS_DIGEST_SHA256} (SHA-256)`,
    );
  }
  return data;
}

/**
 * An MSP as `PROVIDER[:TAG[,TAG]]` (`chat.example:primary,work`, `wire.example:business,pref:1`).
 * The tags are checked against the preferences vocabulary (docs/protocol.md §4.2) here, before
 * anything is signed: a DP would refuse a mapping with `pref:0` or `ctx:Bad Name`
 * (`ERR_MAPPING_INVALID`), and a tag the recipient meant as a preference must not be published
 * as a free-form tag that means nothing.
 */
export function msp(value: string): MspEntry {
  const colon = value.indexOf(':');
  const provider = domainName(colon < 0 ? value : value.slice(0, colon));
  const tags =
    colon < 0
      ? []
      : value
          .slice(colon + 1)
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== '');
  const problem = checkPreferenceTags(tags);
  if (problem !== undefined) throw new InvalidArgumentError(problem);
  return { provider, tags };
}

/** An MSP entry to seal to the audience key in `file` (see {@link sealedMsp}). */
export interface SealedMspFlag {
  /** The audience key file, as given (relative to the working directory). */
  readonly file: string;
  readonly entry: MspEntry;
}

/**
 * An MSP to seal as `FILE=PROVIDER[:TAG[,TAG]]` (`soccer.audience=wire.example:ctx:soccer`):
 * the audience key file, then the entry as {@link msp} reads it. The file name ends at the first
 * `=`, since a provider is a domain name and holds none.
 */
export function sealedMsp(value: string): SealedMspFlag {
  const at = value.indexOf('=');
  if (at <= 0 || at === value.length - 1) {
    throw new InvalidArgumentError('expected FILE=PROVIDER[:TAG[,TAG]]');
  }
  return { file: value.slice(0, at), entry: msp(value.slice(at + 1)) };
}

/**
 * A context a sender names (`personal`, `business`, `ctx:<name>`; docs/protocol.md §4.2), so a
 * typing mistake is refused instead of silently matching no entry.
 */
export function senderContext(value: string): string {
  if (!isContext(value)) {
    throw new InvalidArgumentError(
      'expected personal, business or ctx:NAME (NAME: 1 to 31 of a-z, 0-9 and -, not first)',
    );
  }
  return value;
}

/** A URI for one of the MSPs, as `PROVIDER=URI` (`chat.example=im:alice@chat.example`). */
export function mspUri(value: string): { provider: string; uri: string } {
  const at = value.indexOf('=');
  if (at < 0 || at === value.length - 1) throw new InvalidArgumentError('expected PROVIDER=URI');
  return { provider: domainName(value.slice(0, at)), uri: value.slice(at + 1) };
}

/**
 * A zone named on the command line: a range (`+44`, `@example.com`) under `apex`, or a zone
 * name (`4.4.e164.mimi.arpa`); in canonical form.
 */
export function zoneOf(flag: string, value: string, apex: string): string {
  if (value.startsWith('+') || value.startsWith('@')) {
    return parseFlag(flag, value, (v) => parseRange(v, apex).zone);
  }
  try {
    return domainName(value);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw usageError('ERR_USAGE', `${flag} ${JSON.stringify(value)}: ${why}`);
  }
}

/** The zone of a range typed on the command line (`+44` → `4.4.e164.mimi.arpa`). */
export function rangeZone(flag: string, value: string, apex: string): string {
  return parseFlag(flag, value, (v) => parseRange(v, apex).zone);
}
