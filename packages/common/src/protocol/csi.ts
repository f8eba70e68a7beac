/**
 * CSIs (cross-service identifiers) and their place in the namespace (design §3).
 *
 * A CSI is a phone number or an email address in one canonical string form, the form that is
 * signed, hashed and named:
 *
 * - phone: `tel:+<E.164 digits>`, e.g. `+44 (0)20 7946 0018` → `tel:+442079460018`;
 * - email: `mailto:<local>@<domain>`, local part NFC and lowercased, domain as IDNA A-labels,
 *   e.g. `Alice@Bücher.DE` → `mailto:alice@xn--bcher-kva.de`.
 *
 * Names are presentation form without the trailing dot, like `names.ts`:
 *
 * - phone: digits reversed, one label each, under `e164.<apex>` (the ENUM convention, RFC 6116
 *   §2.4): `tel:+442079460018` → `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa`;
 * - email: the first 28 octets of SHA-256 of the local part, hex, as one label (the RFC 7929 §3
 *   convention), then the domain, then `email.<apex>`:
 *   `mailto:alice@example.com` → `<56 hex digits>.example.com.email.mimi.arpa`.
 *
 * Bad input throws {@link CsiError} with a stable code from {@link CsiErrorCode}; query-path
 * helpers ({@link nameToCsi}, {@link rangeOfZone}) return `undefined` instead.
 */

import { createHash } from 'node:crypto';
import { domainToASCII } from 'node:url';
import {
  ParseError,
  parsePhoneNumberWithError,
  validatePhoneNumberLength,
} from 'libphonenumber-js';
import type { PhoneNumber } from 'libphonenumber-js';
import { CsiError, type CsiErrorCode } from './errors.js';
import { MAX_LABEL_OCTETS, MAX_NAME_OCTETS } from './names.js';

/** A CSI in canonical form (`tel:+442079460018`, `mailto:alice@example.com`); make one with {@link parseCsi}. */
export type Csi = string & { readonly __brand: 'Csi' };

/** The two kinds of CSI, named by their URI scheme. */
export type CsiKind = 'tel' | 'mailto';

/**
 * A delegated CSI prefix or domain and the zone that serves it (design §3): a phone range is a
 * digit prefix (`+44` → `4.4.e164.mimi.arpa`), an email range is a domain or a domain suffix
 * (`example.com` → `example.com.email.mimi.arpa`, `com` → `com.email.mimi.arpa`).
 */
export type Range =
  { kind: 'tel'; prefix: string; zone: string } | { kind: 'mailto'; domain: string; zone: string };

/**
 * Longest input {@link parseCsi} looks at, in UTF-16 code units. 320 is the classic bound on an
 * email address (64-octet local part, `@`, 255-octet domain; RFC 3696 §3 before its erratum)
 * and far above any typed phone number; longer input is refused before any parsing.
 */
export const MAX_CSI_INPUT_LENGTH = 320;

/** Most digits in an international phone number, country code included (ITU-T E.164 §6). */
export const MAX_E164_DIGITS = 15;

/** The default apex of the namespace (design §3), in presentation form without the dot. */
export const DEFAULT_APEX = 'mimi.arpa';

const TEL_PREFIX = 'tel:';
const MAILTO_PREFIX = 'mailto:';
const E164_LABEL = 'e164';
const EMAIL_LABEL = 'email';
/** RFC 5321 §4.5.3.1.1: a local part is at most 64 octets. */
const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 7929 §3: the local part is hashed with SHA-256 and the first 28 octets are kept. */
const LOCAL_PART_HASH_OCTETS = 28;
/** A host name in presentation form without the trailing dot: 255 wire octets minus 2. */
const MAX_DOMAIN_CHARS = MAX_NAME_OCTETS - 2;

/** Visual separators people type in phone numbers: spaces, dashes of any kind, dots, parens. */
const PHONE_SEPARATORS = /[\p{Zs}\p{Pd}\t().]/gu;
/** RFC 1123 §2.1 host name label (LDH), already lowercased. */
const LDH_LABEL = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;
/** An apex label: LDH plus `_`, as `names.ts` allows. */
const APEX_LABEL = /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?$/;
/** Whitespace, control characters and lone surrogates (not encodable as UTF-8). */
const WHITESPACE_OR_CONTROL = /[\p{White_Space}\p{Cc}\p{Cs}]/u;
/**
 * A character outside RFC 5322 §3.2.3 `atext` (extended by RFC 6531 §3.3 with every non-ASCII
 * character) and `.`; such characters are only allowed in quoted local parts.
 */
const NOT_LOCAL_PART_CHAR = /[^A-Za-z0-9!#$%&'*+/=?^_`{|}~.\u0080-\u{10FFFF}-]/u;

function fail(code: CsiErrorCode, message: string, input: string): CsiError {
  return new CsiError(code, message, input);
}

/**
 * A name ASCII-lowercased without its trailing dot (RFC 4343). Every name this module builds or
 * matches is made of plain digit, LDH and `_` labels, so no RFC 1035 §5.1 escapes need undoing:
 * a name with a backslash simply never matches.
 */
function lowerName(name: string): string {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name;
  return trimmed.replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Wire octets of a name of plain ASCII labels: one length octet per label, plus the root. */
function wireLength(name: string): number {
  return name.length + 2;
}

/**
 * Parses what people type into a canonical CSI, or throws a {@link CsiError} whose `code` (see
 * {@link CsiErrorCode}) says which rule the input broke. Messages name at most the offending
 * character, never the identifier, so that they can be logged; the input is on `error.input`.
 *
 * Phones: `+44 20 7946 0018`, `+44 (0)20 7946 0018`, `0044 20 7946 0018`, `(+44) 20-7946-0018`,
 * `tel:+442079460018` → `tel:+442079460018`. A number must carry its country code: there is no
 * default country. It is accepted when libphonenumber finds it *possible* (a known country code
 * and a length used by that country), not *valid* (inside a range the metadata lists as
 * allocated): allocations change every month, and the set of CSIs every service accepts must not
 * depend on which metadata version each one ships. Fictional ranges (Ofcom's 020 7946 0xxx, the
 * NANP's 555-01xx) are therefore accepted.
 *
 * Emails: `Alice@Example.COM`, `mailto:Alice@Example.com` → `mailto:alice@example.com`;
 * `user@bücher.de` → `mailto:user@xn--bcher-kva.de`. Quoted local parts and address literals
 * are refused.
 */
export function parseCsi(input: string): Csi {
  if (input.length > MAX_CSI_INPUT_LENGTH) {
    throw fail(
      'ERR_CSI_TOO_LONG',
      `input is ${input.length} characters long; at most ${MAX_CSI_INPUT_LENGTH} are accepted`,
      input,
    );
  }
  const text = input.trim();
  if (text === '') throw fail('ERR_CSI_EMPTY', 'input is empty', input);

  const head = text.slice(0, MAILTO_PREFIX.length).toLowerCase();
  if (head.startsWith(MAILTO_PREFIX)) {
    return parseEmail(text.slice(MAILTO_PREFIX.length), input);
  }
  if (head.startsWith(TEL_PREFIX)) return parsePhone(text.slice(TEL_PREFIX.length), input);
  if (text.includes('@')) return parseEmail(text, input);
  if (/^[+(0-9]/.test(text)) return parsePhone(text, input);
  throw fail(
    'ERR_CSI_UNRECOGNIZED',
    'not a phone number (+ and country code, e.g. +44 20 7946 0018) ' +
      'nor an email address (e.g. alice@example.com)',
    input,
  );
}

/**
 * Phone number → `tel:+<digits>`. Worked example: `+44 (0)20 7946-0018` → separators dropped
 * → `+4402079460018` → libphonenumber strips the UK trunk prefix `0` → `+442079460018`.
 */
function parsePhone(body: string, input: string): Csi {
  const compact = body.replace(PHONE_SEPARATORS, '');
  if (compact === '') throw fail('ERR_CSI_PHONE_INVALID', 'no phone number after tel:', input);
  const bad = /[^+0-9]/u.exec(compact);
  if (bad !== null) {
    throw fail(
      'ERR_CSI_PHONE_INVALID',
      `phone number contains "${bad[0]}"; only a leading +, digits, spaces, dashes, dots and ` +
        'parentheses are allowed (no letters or extensions)',
      input,
    );
  }
  if (compact.lastIndexOf('+') > 0) {
    throw fail('ERR_CSI_PHONE_INVALID', 'a + may only appear before the country code', input);
  }

  let international: string;
  if (compact.startsWith('+')) {
    international = compact;
  } else if (compact.startsWith('00')) {
    // 00 is the international prefix ITU-T recommends and most countries dial. Others (011 in
    // the NANP) are not recognized: such input reads as a national number without a country.
    international = `+${compact.slice(2)}`;
  } else {
    throw fail(
      'ERR_CSI_PHONE_NO_COUNTRY',
      'phone number has no country code; add it with a leading + (e.g. +44 20 7946 0018)',
      input,
    );
  }
  if (international === '+') throw fail('ERR_CSI_PHONE_INVALID', 'no digits after +', input);

  const parsed = parseInternational(international, input);
  const e164 = parsed.number;
  const digits = e164.length - 1;
  if (digits > MAX_E164_DIGITS) {
    throw fail(
      'ERR_CSI_PHONE_TOO_LONG',
      `phone number has ${digits} digits; E.164 allows at most ${MAX_E164_DIGITS}`,
      input,
    );
  }
  // The canonical form must parse to itself, or parseCsi would not be idempotent: libphonenumber
  // strips one trunk prefix per parse, so `+44 0 0161 …` becomes `+440161…`, which a second
  // parse would turn into `+44161…`. Such input is refused rather than guessed at. Input already
  // in canonical form (what back ends send) is its own second parse: libphonenumber is a
  // function of the string, and its parse is most of the time parseCsi takes.
  const again = e164 === international ? parsed : parseInternational(e164, input);
  if (again.number !== e164) {
    throw fail(
      'ERR_CSI_PHONE_INVALID',
      `phone number still starts with a trunk prefix after +${again.countryCallingCode}; ` +
        'write the national number without it',
      input,
    );
  }
  if (!again.isPossible()) {
    const why = validatePhoneNumberLength(e164);
    const length =
      why === 'TOO_SHORT' ? 'too short' : why === 'TOO_LONG' ? 'too long' : 'not a possible length';
    throw fail(
      'ERR_CSI_PHONE_INVALID',
      `phone number is ${length} for country code +${again.countryCallingCode}`,
      input,
    );
  }
  return `${TEL_PREFIX}${e164}` as Csi;
}

/** libphonenumber on `+<digits>`, its ParseError codes mapped to ours; other errors are faults. */
function parseInternational(international: string, input: string): PhoneNumber {
  try {
    return parsePhoneNumberWithError(international);
  } catch (error) {
    if (!(error instanceof ParseError)) throw error;
    switch (error.message) {
      case 'INVALID_COUNTRY':
        throw fail(
          'ERR_CSI_PHONE_INVALID',
          'phone number does not start with an assigned country code',
          input,
        );
      case 'TOO_LONG':
        throw fail(
          'ERR_CSI_PHONE_TOO_LONG',
          `phone number is too long; E.164 allows at most ${MAX_E164_DIGITS} digits`,
          input,
        );
      default:
        throw fail('ERR_CSI_PHONE_INVALID', 'phone number is too short', input);
    }
  }
}

/**
 * Email address → `mailto:<local>@<domain>`. Worked example: `Alice@Bücher.DE` → local part
 * NFC, lowercased, NFC again → `alice`; domain through UTS #46 → `xn--bcher-kva.de`.
 */
function parseEmail(address: string, input: string): Csi {
  if (address.startsWith('"')) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      'quoted local parts ("…"@example.com) are not supported',
      input,
    );
  }
  if (WHITESPACE_OR_CONTROL.test(address)) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      'email address contains whitespace, a control character or malformed Unicode',
      input,
    );
  }
  const parts = address.split('@');
  if (parts.length !== 2) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      parts.length === 1
        ? 'email address has no @'
        : 'email address has more than one @ (quoted local parts are not supported)',
      input,
    );
  }
  const [rawLocal = '', rawDomain = ''] = parts;
  if (rawLocal === '') throw fail('ERR_CSI_EMAIL_INVALID', 'nothing before the @', input);

  // Design §3: NFC, then lowercase. NFC once more because lowercasing can leave a sequence
  // that NFC composes: `J\u030C` has no precomposed form, `j\u030C` does (`ǰ`, U+01F0).
  const local = rawLocal.normalize('NFC').toLowerCase().normalize('NFC');
  const badChar = NOT_LOCAL_PART_CHAR.exec(local);
  if (badChar !== null) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      `local part contains "${badChar[0]}", which only a quoted local part may (not supported)`,
      input,
    );
  }
  // RFC 5322 §3.2.3 dot-atom: no leading, trailing or doubled dot.
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      'local part may not start or end with a dot or contain two dots in a row',
      input,
    );
  }
  const octets = Buffer.byteLength(local, 'utf8');
  if (octets > MAX_LOCAL_PART_OCTETS) {
    throw fail(
      'ERR_CSI_EMAIL_INVALID',
      `local part is ${octets} octets in UTF-8; at most ${MAX_LOCAL_PART_OCTETS} are allowed`,
      input,
    );
  }

  const domain = toHostName(rawDomain, 2);
  if (domain.kind === 'invalid') throw fail('ERR_CSI_EMAIL_DOMAIN', domain.reason, input);
  return `${MAILTO_PREFIX}${local}@${domain.name}` as Csi;
}

type HostNameOutcome = { kind: 'host'; name: string } | { kind: 'invalid'; reason: string };

/**
 * A domain as typed → lowercase A-label host name (UTS #46 processing via WHATWG
 * `domainToASCII`, then RFC 1123 LDH and RFC 1035 length checks). `Bücher.DE` →
 * `xn--bcher-kva.de`. The result is an outcome, so that each caller picks its error code.
 */
function toHostName(domain: string, minLabels: number): HostNameOutcome {
  if (domain === '') return { kind: 'invalid', reason: 'domain is empty' };
  if (domain.startsWith('[')) {
    return { kind: 'invalid', reason: 'address literals such as [192.0.2.1] are not supported' };
  }
  // domainToASCII follows the WHATWG URL host parser, which also percent-decodes and accepts
  // `_`, `*` and other URL host characters; only LDH and dots are allowed in from ASCII.
  const badAscii = /[^A-Za-z0-9.\u0080-\u{10FFFF}-]/u.exec(domain);
  if (badAscii !== null) {
    return { kind: 'invalid', reason: `domain contains ${JSON.stringify(badAscii[0])}` };
  }
  const ascii = domainToASCII(domain);
  if (ascii === '') {
    return {
      kind: 'invalid',
      reason: 'domain is not a valid internationalized domain name (UTS #46)',
    };
  }
  if (ascii.endsWith('.')) return { kind: 'invalid', reason: 'domain may not end with a dot' };
  if (ascii.length > MAX_DOMAIN_CHARS) {
    return { kind: 'invalid', reason: `domain is longer than ${MAX_DOMAIN_CHARS} octets` };
  }
  const labels = ascii.split('.');
  for (const label of labels) {
    if (label === '') return { kind: 'invalid', reason: 'domain has an empty label' };
    if (label.length > MAX_LABEL_OCTETS) {
      return {
        kind: 'invalid',
        reason: `domain has a label longer than ${MAX_LABEL_OCTETS} octets`,
      };
    }
    if (!LDH_LABEL.test(label)) {
      return {
        kind: 'invalid',
        reason: 'a domain label has a character other than letters, digits and inner hyphens',
      };
    }
  }
  // RFC 3696 §2: a top-level label is never all-numeric; this also refuses IPv4 addresses,
  // which domainToASCII would otherwise serialize (`0x7f.1` → `127.0.0.1`).
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? '')) {
    return {
      kind: 'invalid',
      reason: 'top-level label is all digits (IP addresses are not supported)',
    };
  }
  if (labels.length < minLabels) {
    return { kind: 'invalid', reason: 'domain needs at least two labels (e.g. example.com)' };
  }
  return { kind: 'host', name: ascii };
}

/** Whether `s` is exactly a canonical CSI: `parseCsi(s) === s`. Never throws on bad input. */
export function isCsi(s: string): s is Csi {
  if (!s.startsWith(`${TEL_PREFIX}+`) && !s.startsWith(MAILTO_PREFIX)) return false;
  try {
    return parseCsi(s) === s;
  } catch (error) {
    if (error instanceof CsiError) return false;
    throw error;
  }
}

/** The kind of a CSI, from its scheme: `tel:+44…` → `'tel'`, `mailto:…` → `'mailto'`. */
export function csiKind(csi: Csi): CsiKind {
  return csi.startsWith(TEL_PREFIX) ? 'tel' : 'mailto';
}

/**
 * The apex as a canonical name (ASCII lowercase, no trailing dot), or a `ERR_CSI_APEX_INVALID`
 * error. It must be a non-root name of LDH/`_` labels that leaves room for names below it.
 */
function canonicalApex(apex: string): string {
  const name = lowerName(apex);
  const labels = name.split('.');
  const valid =
    wireLength(name) <= MAX_NAME_OCTETS &&
    labels.every((l) => l.length <= MAX_LABEL_OCTETS && APEX_LABEL.test(l));
  if (!valid) {
    throw fail(
      'ERR_CSI_APEX_INVALID',
      'apex is not a valid domain name (labels of letters, digits, - and _; at most 253 octets)',
      apex,
    );
  }
  return name;
}

/** `+442079460018`'s digits as reversed labels: `8.1.0.0.6.4.9.7.0.2.4.4` (RFC 6116 §2.4). */
function reversedDigitLabels(digits: string): string {
  return [...digits].reverse().join('.');
}

/**
 * The name of a CSI under `apex` (design §3), presentation form without the trailing dot.
 *
 * - `tel:+442079460018` → `8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa` (RFC 6116 §2.4);
 * - `mailto:hugh@example.com` →
 *   `c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6.example.com.email.mimi.arpa`
 *   (RFC 7929 §3: hex of the first 28 octets of SHA-256 of the UTF-8 local part).
 *
 * Throws `ERR_CSI_APEX_INVALID` for a bad apex and `ERR_CSI_NAME_TOO_LONG` when an email
 * domain is so long that the name would exceed 255 octets (RFC 1035 §2.3.4).
 */
export function csiToName(csi: Csi, apex: string = DEFAULT_APEX): string {
  const base = canonicalApex(apex);
  let name: string;
  if (csiKind(csi) === 'tel') {
    const digits = csi.slice(`${TEL_PREFIX}+`.length);
    name = `${reversedDigitLabels(digits)}.${E164_LABEL}.${base}`;
  } else {
    const at = csi.lastIndexOf('@');
    const local = csi.slice(MAILTO_PREFIX.length, at);
    const domain = csi.slice(at + 1);
    const hash = createHash('sha256')
      .update(local, 'utf8')
      .digest('hex')
      .slice(0, LOCAL_PART_HASH_OCTETS * 2);
    name = `${hash}.${domain}.${EMAIL_LABEL}.${base}`;
  }
  const octets = wireLength(name);
  if (octets > MAX_NAME_OCTETS) {
    throw fail(
      'ERR_CSI_NAME_TOO_LONG',
      `name under ${base} would be ${octets} octets; DNS allows ${MAX_NAME_OCTETS}`,
      csi,
    );
  }
  return name;
}

/**
 * The MAPREF-target name of a CSI in the zone `zone` of an MSP-run DP (design §4, §8;
 * docs/protocol.md §9): the CSI's name with `zone` taken as the apex, so that every DP names a
 * CSI the same way without agreeing on anything but its own zone.
 *
 * - `tel:+442079460018` in `chat.example.email.mimi.arpa` →
 *   `8.1.0.0.6.4.9.7.0.2.4.4.e164.chat.example.email.mimi.arpa`;
 * - `mailto:hugh@example.com` → `<hex56>.example.com.email.chat.example.email.mimi.arpa`.
 *
 * `nameToCsi(name, zone)` reads a phone CSI back. `zone` is case-insensitive, a trailing dot
 * allowed; throws as {@link csiToName} does (`ERR_CSI_APEX_INVALID`, `ERR_CSI_NAME_TOO_LONG`).
 */
export function maprefTargetName(csi: Csi, zone: string): string {
  return csiToName(csi, zone);
}

/**
 * The CSI a name stands for, where that can be known: phone names map back
 * (`8.1.0.0.6.4.9.7.0.2.4.4.E164.mimi.arpa.` → `tel:+442079460018`, case-insensitive, trailing
 * dot allowed). Email names carry a hash of the local part and give `undefined`, as does any
 * name that is not the full name of a canonical phone CSI under `e164.<apex>`. Never throws for
 * a bad name (this is on the query path); throws `ERR_CSI_APEX_INVALID` for a bad apex.
 */
export function nameToCsi(name: string, apex: string = DEFAULT_APEX): Csi | undefined {
  const suffix = `.${E164_LABEL}.${canonicalApex(apex)}`;
  const canonical = lowerName(name);
  if (!canonical.endsWith(suffix)) return undefined;
  const labels = canonical.slice(0, -suffix.length).split('.');
  if (labels.length > MAX_E164_DIGITS || !labels.every((l) => /^[0-9]$/.test(l))) {
    return undefined;
  }
  const candidate = `${TEL_PREFIX}+${labels.reverse().join('')}`;
  return isCsi(candidate) ? candidate : undefined;
}

/**
 * Parses a range as typed (design §3) under `apex`:
 *
 * - `+44` → `{ kind: 'tel', prefix: '+44', zone: '4.4.e164.mimi.arpa' }`; any prefix of 1 to
 *   15 digits, spaces allowed (`+44 20`), not starting with 0 (no country code does);
 * - `@example.com` or `example.com` → `{ kind: 'mailto', domain: 'example.com',
 *   zone: 'example.com.email.mimi.arpa' }`; a single label (`com`) is a suffix range; IDN
 *   domains become A-labels.
 *
 * Throws `ERR_RANGE_INVALID` with the reason, or `ERR_CSI_APEX_INVALID` for a bad apex.
 */
export function parseRange(input: string, apex: string = DEFAULT_APEX): Range {
  const base = canonicalApex(apex);
  if (input.length > MAX_CSI_INPUT_LENGTH) {
    throw fail(
      'ERR_RANGE_INVALID',
      `range is longer than ${MAX_CSI_INPUT_LENGTH} characters`,
      input,
    );
  }
  const text = input.trim();
  if (text === '') throw fail('ERR_RANGE_INVALID', 'range is empty', input);

  let range: Range;
  if (text.startsWith('+') || /^[0-9 ]+$/.test(text)) {
    // Digits without + are refused rather than read as a prefix: `44` could be meant as a
    // national number, and an all-digit domain is not a domain (RFC 3696 §2).
    const digits = text.startsWith('+') ? text.slice(1).replace(/ /g, '') : '';
    if (!/^[0-9]{1,15}$/.test(digits)) {
      throw fail(
        'ERR_RANGE_INVALID',
        `a phone range is + and 1 to ${MAX_E164_DIGITS} digits (e.g. +44)`,
        input,
      );
    }
    if (digits.startsWith('0')) {
      throw fail('ERR_RANGE_INVALID', 'no country code starts with 0 (ITU-T E.164)', input);
    }
    range = {
      kind: 'tel',
      prefix: `+${digits}`,
      zone: `${reversedDigitLabels(digits)}.${E164_LABEL}.${base}`,
    };
  } else {
    const domain = text.startsWith('@') ? text.slice(1) : text;
    if (domain.includes('@')) {
      throw fail(
        'ERR_RANGE_INVALID',
        'an email range is a domain (example.com or @example.com), not an address',
        input,
      );
    }
    const host = toHostName(domain, 1);
    if (host.kind === 'invalid') throw fail('ERR_RANGE_INVALID', host.reason, input);
    range = { kind: 'mailto', domain: host.name, zone: `${host.name}.${EMAIL_LABEL}.${base}` };
  }
  const octets = wireLength(range.zone);
  if (octets > MAX_NAME_OCTETS) {
    throw fail(
      'ERR_RANGE_INVALID',
      `zone under ${base} would be ${octets} octets; DNS allows ${MAX_NAME_OCTETS}`,
      input,
    );
  }
  return range;
}

/**
 * The range a zone serves, the inverse of {@link parseRange}: `4.4.e164.mimi.arpa` → `+44`,
 * `example.com.email.mimi.arpa` → `example.com` (case-insensitive, trailing dot allowed).
 * `undefined` for a zone that is not exactly the zone of a range under `apex`.
 */
export function rangeOfZone(zone: string, apex: string = DEFAULT_APEX): Range | undefined {
  const base = canonicalApex(apex);
  const canonical = lowerName(zone);
  const telSuffix = `.${E164_LABEL}.${base}`;
  const emailSuffix = `.${EMAIL_LABEL}.${base}`;
  let typed: string;
  if (canonical.endsWith(telSuffix)) {
    const labels = canonical.slice(0, -telSuffix.length).split('.');
    if (!labels.every((l) => /^[0-9]$/.test(l))) return undefined;
    typed = `+${labels.reverse().join('')}`;
  } else if (canonical.endsWith(emailSuffix)) {
    typed = canonical.slice(0, -emailSuffix.length);
  } else {
    return undefined;
  }
  try {
    const range = parseRange(typed, base);
    // Only an exact round trip counts: a U-label or an `@` in the zone is not a range's zone.
    return range.zone === canonical ? range : undefined;
  } catch (error) {
    if (error instanceof CsiError) return undefined;
    throw error;
  }
}

/**
 * Whether a CSI falls in a range: its digits start with the prefix (`tel:+442079460018` is in
 * `+44` and `+4420`), or its domain is the range's domain or below it (`mailto:a@mail.example.com`
 * is in `example.com` and `com`, not in `ample.com`).
 */
export function csiInRange(csi: Csi, range: Range): boolean {
  if (range.kind === 'tel') return csi.startsWith(`${TEL_PREFIX}${range.prefix}`);
  if (csiKind(csi) !== 'mailto') return false;
  const domain = csi.slice(csi.lastIndexOf('@') + 1);
  return domain === range.domain || domain.endsWith(`.${range.domain}`);
}

/** A range as people write it, accepted back by {@link parseRange}: `+44`, `@example.com`. */
export function formatRange(range: Range): string {
  return range.kind === 'tel' ? range.prefix : `@${range.domain}`;
}
