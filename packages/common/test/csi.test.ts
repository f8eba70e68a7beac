import fc from 'fast-check';
import { getCountries, getCountryCallingCode, getExampleNumber } from 'libphonenumber-js';
import examples from 'libphonenumber-js/mobile/examples';
import { describe, expect, it } from 'vitest';
import {
  CsiError,
  DEFAULT_APEX,
  MAX_CSI_INPUT_LENGTH,
  csiInRange,
  csiKind,
  csiToName,
  formatRange,
  isCsi,
  maprefTargetName,
  nameToCsi,
  parseCsi,
  parseRange,
  rangeOfZone,
} from '../src/index.js';
import type { Csi, CsiErrorCode, Range } from '../src/index.js';

/** The CsiError code `fn` throws; fails the test if it returns or throws anything else. */
function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CsiError);
    return (error as CsiError).code;
  }
  throw new Error('expected a CsiError, got a result');
}

function csi(input: string): Csi {
  return parseCsi(input);
}

describe('parseCsi: phone numbers', () => {
  it.each([
    ['+44 20 7946 0018', 'tel:+442079460018'],
    ['+44 (0)20 7946 0018', 'tel:+442079460018'],
    ['+44 (0) 20 7946 0018', 'tel:+442079460018'],
    ['+44 020 7946 0018', 'tel:+442079460018'],
    ['0044 20 7946 0018', 'tel:+442079460018'],
    ['00 44 20 7946 0018', 'tel:+442079460018'],
    ['+44-20-7946-0018', 'tel:+442079460018'],
    ['+44.20.7946.0018', 'tel:+442079460018'],
    ['(+44) 20 7946 0018', 'tel:+442079460018'],
    ['+44\u00a020\u00a07946\u00a00018', 'tel:+442079460018'],
    ['+44\u201320\u20137946\u20130018', 'tel:+442079460018'],
    ['  +44 20 7946 0018\n', 'tel:+442079460018'],
    ['+442079460018', 'tel:+442079460018'],
    ['tel:+442079460018', 'tel:+442079460018'],
    ['TEL:+44 20 7946 0018', 'tel:+442079460018'],
    ['+1 202 555 0143', 'tel:+12025550143'],
    ['+1 (202) 555-0143', 'tel:+12025550143'],
    ['+1.202.555.0143', 'tel:+12025550143'],
    // RFC 3761 §2.1: "+44-116-496-0348" yields the application unique string "+441164960348".
    ['+44-116-496-0348', 'tel:+441164960348'],
    // RFC 2916 §2 example number.
    ['+46-8-9761234', 'tel:+4689761234'],
    ['+49 (0)30 123456', 'tel:+4930123456'],
    ['+33 (0)1 23 45 67 89', 'tel:+33123456789'],
    // Italy keeps the leading 0 in international form; libphonenumber knows this.
    ['+39 06 1234 5678', 'tel:+390612345678'],
    ['+39 (0)6 1234 5678', 'tel:+390612345678'],
    ['+800 1234 5678', 'tel:+80012345678'],
    // Possible but not valid (Ofcom's 01632 960xxx drama range): possibility is the test.
    ['+44 1632 960000', 'tel:+441632960000'],
  ])('accepts %j as %s', (input, expected) => {
    expect(parseCsi(input)).toBe(expected);
  });

  it.each<[string, CsiErrorCode]>([
    ['020 7946 0018', 'ERR_CSI_PHONE_NO_COUNTRY'],
    ['(020) 7946 0018', 'ERR_CSI_PHONE_NO_COUNTRY'],
    ['tel:020 7946 0018', 'ERR_CSI_PHONE_NO_COUNTRY'],
    ['+44 20 7946 0018 ext 12', 'ERR_CSI_PHONE_INVALID'],
    ['+1-800-FLOWERS', 'ERR_CSI_PHONE_INVALID'],
    ['tel:+44-20-7946-0018;ext=12', 'ERR_CSI_PHONE_INVALID'],
    ['44+20 7946 0018', 'ERR_CSI_PHONE_INVALID'],
    ['+44 20 7946 0018 +1', 'ERR_CSI_PHONE_INVALID'],
    ['+', 'ERR_CSI_PHONE_INVALID'],
    ['00', 'ERR_CSI_PHONE_INVALID'],
    ['tel:', 'ERR_CSI_PHONE_INVALID'],
    ['+44', 'ERR_CSI_PHONE_INVALID'],
    ['+44 20', 'ERR_CSI_PHONE_INVALID'],
    ['+1 202 555 014', 'ERR_CSI_PHONE_INVALID'],
    ['+44 20 7946 00188', 'ERR_CSI_PHONE_INVALID'],
    ['+1 (0)202 555 0143', 'ERR_CSI_PHONE_INVALID'],
    ['+999 1234 5678', 'ERR_CSI_PHONE_INVALID'],
    ['+0 123 456 789', 'ERR_CSI_PHONE_INVALID'],
    // One trunk prefix is dropped; a second would make the canonical form parse differently.
    ['+44 0 0161 662 988', 'ERR_CSI_PHONE_INVALID'],
    // 16 digits: libphonenumber finds lengths like this possible in Germany, E.164 does not.
    ['+49 3084 8177 1573 78', 'ERR_CSI_PHONE_TOO_LONG'],
    ['+44 2079 4600 1899 9999 99', 'ERR_CSI_PHONE_TOO_LONG'],
  ])('rejects %j with %s', (input, code) => {
    expect(codeOf(() => parseCsi(input))).toBe(code);
  });

  it('tells the user to add the country code when there is none', () => {
    expect(() => parseCsi('020 7946 0018')).toThrow(/country code/);
  });
});

describe('parseCsi: email addresses', () => {
  it.each([
    ['Alice@Example.COM', 'mailto:alice@example.com'],
    ['mailto:Alice@Example.com', 'mailto:alice@example.com'],
    ['MAILTO:alice@example.com', 'mailto:alice@example.com'],
    [' alice@example.com ', 'mailto:alice@example.com'],
    ['alice@ＥＸＡＭＰＬＥ.com', 'mailto:alice@example.com'],
    ['user@bücher.de', 'mailto:user@xn--bcher-kva.de'],
    ['user@BÜCHER.de', 'mailto:user@xn--bcher-kva.de'],
    ['user@xn--bcher-kva.de', 'mailto:user@xn--bcher-kva.de'],
    ['user@faß.de', 'mailto:user@xn--fa-hia.de'],
    ['用户@例子.广告', 'mailto:用户@xn--fsqu00a.xn--4rr70v'],
    // Decomposed Ä becomes precomposed ä (NFC), then lowercase.
    ['A\u0308LICE@example.com', 'mailto:\u00e4lice@example.com'],
    // Lowercasing J\u030C gives j\u030C, which NFC composes to U+01F0.
    ['J\u030C@example.com', 'mailto:\u01f0@example.com'],
    ['First.Last+tag@mail.example.co.uk', 'mailto:first.last+tag@mail.example.co.uk'],
    ["o'brien@example.com", "mailto:o'brien@example.com"],
    ['a!#$%&*/=?^_`{|}~-@example.com', 'mailto:a!#$%&*/=?^_`{|}~-@example.com'],
    ['+44@example.com', 'mailto:+44@example.com'],
    [`${'x'.repeat(64)}@example.com`, `mailto:${'x'.repeat(64)}@example.com`],
    ['a@b.co', 'mailto:a@b.co'],
  ])('accepts %j as %s', (input, expected) => {
    expect(parseCsi(input)).toBe(expected);
  });

  it.each<[string, CsiErrorCode]>([
    ['@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['mailto:alice', 'ERR_CSI_EMAIL_INVALID'],
    ['mailto:', 'ERR_CSI_EMAIL_INVALID'],
    ['a@b@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['"alice smith"@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['"alice"@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['alice smith@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['alice\u0000@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['alice\u2028@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['alice\ud800@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['.alice@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['alice.@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['al..ice@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['al(ice)@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['<alice>@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['a,b@example.com', 'ERR_CSI_EMAIL_INVALID'],
    ['a\\b@example.com', 'ERR_CSI_EMAIL_INVALID'],
    [`${'x'.repeat(65)}@example.com`, 'ERR_CSI_EMAIL_INVALID'],
    // 33 characters, 66 octets in UTF-8 (RFC 5321 §4.5.3.1.1 counts octets).
    [`${'é'.repeat(33)}@example.com`, 'ERR_CSI_EMAIL_INVALID'],
    ['alice@', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@localhost', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@[192.0.2.1]', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@[IPv6:2001:db8::1]', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@192.0.2.1', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@0x7f.1', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example.123', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example.com.', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example..com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@.example.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@-example.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example-.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@exa_mple.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@exa%41mple.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example.com?subject=hi', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@example.com:25', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@xn--zz.com', 'ERR_CSI_EMAIL_DOMAIN'],
    ['alice@a\u200db.com', 'ERR_CSI_EMAIL_DOMAIN'],
    [`alice@${'a'.repeat(64)}.com`, 'ERR_CSI_EMAIL_DOMAIN'],
    [`alice@${`${'a'.repeat(63)}.`.repeat(4)}com`, 'ERR_CSI_EMAIL_DOMAIN'],
  ])('rejects %j with %s', (input, code) => {
    expect(codeOf(() => parseCsi(input))).toBe(code);
  });

  it('says that quoted local parts are not supported', () => {
    expect(() => parseCsi('"a@b"@example.com')).toThrow(/quoted/);
  });
});

describe('parseCsi: other input', () => {
  it.each<[string, CsiErrorCode]>([
    ['', 'ERR_CSI_EMPTY'],
    [' \t\n', 'ERR_CSI_EMPTY'],
    ['alice', 'ERR_CSI_UNRECOGNIZED'],
    ['https://example.com/', 'ERR_CSI_UNRECOGNIZED'],
    ['sip:alice', 'ERR_CSI_UNRECOGNIZED'],
    ['x'.repeat(MAX_CSI_INPUT_LENGTH + 1), 'ERR_CSI_TOO_LONG'],
    [`+44${' '.repeat(MAX_CSI_INPUT_LENGTH)}`, 'ERR_CSI_TOO_LONG'],
  ])('rejects %j with %s', (input, code) => {
    expect(codeOf(() => parseCsi(input))).toBe(code);
  });

  it('keeps the input on the error but out of the message', () => {
    const error = (() => {
      try {
        parseCsi('secret.person@exa_mple.com');
      } catch (e) {
        return e as CsiError;
      }
      throw new Error('expected a CsiError');
    })();
    expect(error.input).toBe('secret.person@exa_mple.com');
    expect(error.message).not.toContain('secret');
  });
});

describe('isCsi and csiKind', () => {
  it.each([
    ['tel:+442079460018', true],
    ['mailto:alice@example.com', true],
    ['mailto:user@xn--bcher-kva.de', true],
    ['+442079460018', false],
    ['tel:+44 20 7946 0018', false],
    ['TEL:+442079460018', false],
    ['tel:+4402079460018', false],
    [' tel:+442079460018', false],
    ['mailto:Alice@example.com', false],
    ['mailto:alice@EXAMPLE.com', false],
    ['mailto:user@bücher.de', false],
    ['alice@example.com', false],
    ['', false],
  ])('isCsi(%j) is %s', (s, expected) => {
    expect(isCsi(s)).toBe(expected);
  });

  it('tells phones from emails', () => {
    expect(csiKind(csi('+44 20 7946 0018'))).toBe('tel');
    expect(csiKind(csi('alice@example.com'))).toBe('mailto');
  });
});

describe('csiToName and nameToCsi', () => {
  it('names the two examples of design §3 exactly', () => {
    expect(`${csiToName(csi('+442079460018'))}.`).toBe('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa.');
    // SHA-256("alice") = 2bd806c9…186d6e90; the first 28 octets make the label.
    expect(`${csiToName(csi('Alice@Example.COM'))}.`).toBe(
      '2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db.example.com.email.mimi.arpa.',
    );
  });

  it.each([
    // RFC 2916 §2: +46-8-9761234 → 4.3.2.1.6.7.9.8.6.4.e164.arpa.
    ['+46-8-9761234', 'arpa', '4.3.2.1.6.7.9.8.6.4.e164.arpa'],
    // RFC 7929 §3 example: hugh@example.com → c93f1e40…c01c1afd6._openpgpkey.example.com.
    [
      'hugh@example.com',
      DEFAULT_APEX,
      'c93f1e400f26708f98cb19d936620da35eec8f72e57f9eec01c1afd6.example.com.email.mimi.arpa',
    ],
    // The local part is hashed as UTF-8 after NFC: "müller" is 6d c3 bc 6c 6c 65 72.
    [
      'Mu\u0308ller@bücher.de',
      DEFAULT_APEX,
      '2dbd218072117713f2d5996a726a9b216ed791ffd0783b6ba4ab6d61.xn--bcher-kva.de.email.mimi.arpa',
    ],
    ['+1 202 555 0143', 'Disc.Example.ORG.', '3.4.1.0.5.5.5.2.0.2.1.e164.disc.example.org'],
  ])('names %j under %s as %s', (input, apex, name) => {
    expect(csiToName(csi(input), apex)).toBe(name);
  });

  it.each([
    [
      '+44 20 7946 0018',
      'chat.example.email.mimi.arpa',
      '8.1.0.0.6.4.9.7.0.2.4.4.e164.chat.example.email.mimi.arpa',
    ],
    [
      '+44 20 7946 0018',
      'Chat.Example.EMAIL.mimi.arpa.',
      '8.1.0.0.6.4.9.7.0.2.4.4.e164.chat.example.email.mimi.arpa',
    ],
    [
      'Alice@Example.COM',
      'chat.example.email.mimi.arpa',
      '2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db.example.com.email.chat.example.email.mimi.arpa',
    ],
  ])('names the MAPREF target of %j in the MSP zone %s as %s', (input, zone, name) => {
    expect(maprefTargetName(csi(input), zone)).toBe(name);
  });

  it('reads a phone CSI back from its MAPREF-target name, and no other', () => {
    const zone = 'chat.example.email.mimi.arpa';
    const phone = csi('+442079460018');
    expect(nameToCsi(maprefTargetName(phone, zone), zone)).toBe(phone);
    // The same name is no CSI's under the namespace apex: a MAPREF target is not a CSI's name.
    expect(nameToCsi(maprefTargetName(phone, zone))).toBeUndefined();
  });

  it('refuses an MSP zone that is no domain name, or a target over 255 octets', () => {
    expect(codeOf(() => maprefTargetName(csi('+442079460018'), 'bad zone'))).toBe(
      'ERR_CSI_APEX_INVALID',
    );
    const zone = `${`${'b'.repeat(60)}.`.repeat(2)}example`;
    const email = csi(`a@${`${'a'.repeat(60)}.`.repeat(1)}example.com`);
    expect(codeOf(() => maprefTargetName(email, zone))).toBe('ERR_CSI_NAME_TOO_LONG');
  });

  it('refuses an email CSI whose name would exceed 255 octets', () => {
    const long = csi(`a@${`${'a'.repeat(60)}.`.repeat(3)}example.com`);
    expect(codeOf(() => csiToName(long))).toBe('ERR_CSI_NAME_TOO_LONG');
  });

  it.each([
    ['8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', DEFAULT_APEX, 'tel:+442079460018'],
    ['8.1.0.0.6.4.9.7.0.2.4.4.E164.MIMI.ARPA.', DEFAULT_APEX, 'tel:+442079460018'],
    ['4.3.2.1.6.7.9.8.6.4.e164.arpa', 'arpa', 'tel:+4689761234'],
  ])('maps the phone name %j under %s back to %s', (name, apex, expected) => {
    expect(nameToCsi(name, apex)).toBe(expected);
  });

  it.each([
    '2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db.example.com.email.mimi.arpa',
    '4.4.e164.mimi.arpa',
    'e164.mimi.arpa',
    'mimi.arpa',
    '8.1.0.0.6.4.9.7.0.2.4.4.e164.other.arpa',
    '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa.example',
    '81.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa',
    'a.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa',
    '\\056.4.4.e164.mimi.arpa',
    '\\',
    // A trunk 0 after the country code is not canonical.
    '8.1.0.0.6.4.9.7.0.2.0.4.4.e164.mimi.arpa',
    // 16 digits.
    '1.2.3.4.5.6.7.8.9.0.1.2.3.4.9.4.e164.mimi.arpa',
    '.8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa',
    '',
    '.',
  ])('gives no CSI for %j', (name) => {
    expect(nameToCsi(name)).toBeUndefined();
  });

  it.each(['', '.', 'a..b', 'bad apex', '-mimi.arpa', 'mimi\\.arpa', `${'a'.repeat(64)}.arpa`])(
    'rejects the apex %j everywhere',
    (apex) => {
      const phone = csi('+442079460018');
      expect(codeOf(() => csiToName(phone, apex))).toBe('ERR_CSI_APEX_INVALID');
      expect(codeOf(() => nameToCsi('8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa', apex))).toBe(
        'ERR_CSI_APEX_INVALID',
      );
      expect(codeOf(() => parseRange('+44', apex))).toBe('ERR_CSI_APEX_INVALID');
      expect(codeOf(() => rangeOfZone('4.4.e164.mimi.arpa', apex))).toBe('ERR_CSI_APEX_INVALID');
    },
  );
});

describe('ranges', () => {
  it.each<[string, Range]>([
    ['+44', { kind: 'tel', prefix: '+44', zone: '4.4.e164.mimi.arpa' }],
    ['+1', { kind: 'tel', prefix: '+1', zone: '1.e164.mimi.arpa' }],
    ['+4420', { kind: 'tel', prefix: '+4420', zone: '0.2.4.4.e164.mimi.arpa' }],
    [' +44 20 ', { kind: 'tel', prefix: '+4420', zone: '0.2.4.4.e164.mimi.arpa' }],
    [
      '+442079460018',
      { kind: 'tel', prefix: '+442079460018', zone: '8.1.0.0.6.4.9.7.0.2.4.4.e164.mimi.arpa' },
    ],
    [
      '@example.com',
      { kind: 'mailto', domain: 'example.com', zone: 'example.com.email.mimi.arpa' },
    ],
    ['example.com', { kind: 'mailto', domain: 'example.com', zone: 'example.com.email.mimi.arpa' }],
    ['Example.COM', { kind: 'mailto', domain: 'example.com', zone: 'example.com.email.mimi.arpa' }],
    ['com', { kind: 'mailto', domain: 'com', zone: 'com.email.mimi.arpa' }],
    ['@com', { kind: 'mailto', domain: 'com', zone: 'com.email.mimi.arpa' }],
    [
      '@bücher.de',
      { kind: 'mailto', domain: 'xn--bcher-kva.de', zone: 'xn--bcher-kva.de.email.mimi.arpa' },
    ],
  ])('parses %j', (input, expected) => {
    expect(parseRange(input)).toEqual(expected);
  });

  it.each([
    '',
    '   ',
    '+',
    '+0',
    '+044',
    '44',
    '+44a',
    '+44-20',
    '+1234567890123456',
    '@',
    'alice@example.com',
    '@-bad.com',
    'example.com.',
    '192.0.2.1',
    '[192.0.2.1]',
    'exa_mple.com',
    'x'.repeat(MAX_CSI_INPUT_LENGTH + 1),
  ])('rejects %j with ERR_RANGE_INVALID', (input) => {
    expect(codeOf(() => parseRange(input))).toBe('ERR_RANGE_INVALID');
  });

  it('parses ranges under another apex', () => {
    expect(parseRange('+44', 'arpa').zone).toBe('4.4.e164.arpa');
    expect(parseRange('example.com', 'Disc.Example.').zone).toBe('example.com.email.disc.example');
  });

  it.each([
    ['4.4.e164.mimi.arpa', '+44'],
    ['4.4.E164.MIMI.ARPA.', '+44'],
    ['1.e164.mimi.arpa', '+1'],
    ['example.com.email.mimi.arpa', '@example.com'],
    ['Example.COM.email.mimi.arpa.', '@example.com'],
    ['com.email.mimi.arpa', '@com'],
    ['xn--bcher-kva.de.email.mimi.arpa', '@xn--bcher-kva.de'],
  ])('finds the range of zone %j', (zone, typed) => {
    expect(rangeOfZone(zone)).toEqual(parseRange(typed));
  });

  it.each([
    'e164.mimi.arpa',
    'email.mimi.arpa',
    'mimi.arpa',
    'arpa',
    '0.e164.mimi.arpa',
    '44.e164.mimi.arpa',
    '1.2.3.4.5.6.7.8.9.0.1.2.3.4.5.6.e164.mimi.arpa',
    'bücher.de.email.mimi.arpa',
    'exa_mple.com.email.mimi.arpa',
    '4.4.e164.other.arpa',
    'example.com.email.other.arpa',
    '',
    '.',
  ])('finds no range for zone %j', (zone) => {
    expect(rangeOfZone(zone)).toBeUndefined();
  });

  it.each([
    ['+44 20 7946 0018', '+44', true],
    ['+44 20 7946 0018', '+4420', true],
    ['+44 20 7946 0018', '+442079460018', true],
    ['+44 20 7946 0018', '+4420794600181', false],
    ['+44 20 7946 0018', '+1', false],
    ['+44 20 7946 0018', '+4', true],
    ['+44 20 7946 0018', 'example.com', false],
    ['alice@mail.example.com', 'example.com', true],
    ['alice@example.com', 'example.com', true],
    ['alice@example.com', 'com', true],
    ['alice@example.com', 'ample.com', false],
    ['alice@example.com', 'mail.example.com', false],
    ['alice@example.com', '+44', false],
    ['user@bücher.de', '@bücher.de', true],
  ])('csiInRange(%j, %j) is %s', (input, range, expected) => {
    expect(csiInRange(csi(input), parseRange(range))).toBe(expected);
  });

  it.each([
    ['+44 20', '+4420'],
    ['@Example.COM', '@example.com'],
    ['example.com', '@example.com'],
    ['com', '@com'],
    ['bücher.de', '@xn--bcher-kva.de'],
  ])('formats %j as %j', (input, formatted) => {
    expect(formatRange(parseRange(input))).toBe(formatted);
  });
});

// Typed forms of a phone number: each country's example number from libphonenumber's metadata
// with its last digits replaced, written with and without separators, 00, tel: and "(0)".
const countryNumbers = getCountries().flatMap((country) => {
  const example = getExampleNumber(country, examples);
  return example === undefined
    ? []
    : [{ cc: getCountryCallingCode(country), national: example.nationalNumber as string }];
});

const typedPhone = fc
  .record({
    number: fc.constantFrom(...countryNumbers),
    tail: fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 3, maxLength: 3 }),
    intl: fc.constantFrom('+', '00', 'tel:+', '(+'),
    separators: fc.array(fc.constantFrom('', ' ', '-', '.', '  '), {
      minLength: 20,
      maxLength: 20,
    }),
  })
  .map(({ number, tail, intl, separators }) => {
    const national = number.national.slice(0, -tail.length) + tail.join('');
    const digits = [...`${number.cc}${national}`];
    const spaced = digits.map((d, i) => d + (separators[i] ?? '')).join('');
    const typed = intl === '(+' ? `(+${number.cc}) ${national}` : `${intl}${spaced}`;
    return { typed, e164: `+${number.cc}${national}` };
  });

const emailLocal = fc
  .array(
    fc.oneof(
      fc.constantFrom(...'abcXYZ019!#$%&*+/=?^_`{|}~-'),
      fc.constantFrom('Ä', 'A\u0308', 'ß', 'ẞ', 'İ', 'Σ', 'J\u030C', 'ǅ', 'ﬀ', 'Å', '用', 'é'),
    ),
    { minLength: 1, maxLength: 20 },
  )
  .map((chars) => chars.join(''));

const emailDomain = fc.oneof(
  fc.domain().map((d) => d.toUpperCase()),
  fc.domain(),
  fc.constantFrom('bücher.de', 'BÜCHER.DE', 'ＥＸＡＭＰＬＥ.com', '例子.广告', 'faß.de'),
);

/** parseCsi, with a CsiError turned into `undefined` and anything else rethrown. */
function tryParse(input: string): Csi | undefined {
  try {
    return parseCsi(input);
  } catch (error) {
    if (error instanceof CsiError) return undefined;
    throw error;
  }
}

describe('properties', () => {
  it('accepts every typed form of a possible number as the same CSI, idempotently', () => {
    fc.assert(
      fc.property(typedPhone, ({ typed, e164 }) => {
        const expected = tryParse(e164);
        const parsed = tryParse(typed);
        expect(parsed).toBe(expected);
        if (parsed !== undefined) {
          expect(parseCsi(parsed)).toBe(parsed);
          expect(isCsi(parsed)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('accepts the example number of every country', () => {
    // Guards the property above against passing vacuously.
    const rejected = countryNumbers.filter((n) => tryParse(`+${n.cc}${n.national}`) === undefined);
    expect(rejected).toEqual([]);
    expect(countryNumbers.length).toBeGreaterThan(200);
  });

  it('normalizes email addresses idempotently', () => {
    fc.assert(
      fc.property(emailLocal, emailDomain, fc.boolean(), (local, domain, scheme) => {
        const parsed = tryParse(`${scheme ? 'MailTo:' : ''}${local}@${domain}`);
        if (parsed !== undefined) {
          expect(parseCsi(parsed)).toBe(parsed);
          expect(isCsi(parsed)).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('normalizes any Unicode local part idempotently', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }), (local) => {
        const parsed = tryParse(`${local}@example.com`);
        if (parsed !== undefined) expect(parseCsi(parsed)).toBe(parsed);
      }),
      { numRuns: 1000 },
    );
  });

  it('maps every phone CSI to a name and back', () => {
    fc.assert(
      fc.property(
        typedPhone,
        fc.constantFrom(DEFAULT_APEX, 'arpa', 'Disc.Example.'),
        ({ typed }, apex) => {
          const c = tryParse(typed);
          if (c === undefined) return;
          expect(nameToCsi(csiToName(c, apex), apex)).toBe(c);
          expect(nameToCsi(`${csiToName(c, apex).toUpperCase()}.`, apex)).toBe(c);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('finds the range of every range zone', () => {
    const phoneRange = fc
      .tuple(
        fc.integer({ min: 1, max: 9 }),
        fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 14 }),
      )
      .map(([first, rest]) => `+${first}${rest.join('')}`);
    const domainRange = fc.oneof(
      fc.domain(),
      fc.domain().map((d) => `@${d.split('.').slice(-1).join('.')}`),
      fc.constantFrom('bücher.de', '@例子.广告', 'com'),
    );
    fc.assert(
      fc.property(
        fc.oneof(phoneRange, domainRange),
        fc.constantFrom(DEFAULT_APEX, 'arpa', 'Disc.Example.'),
        (typed, apex) => {
          let range: Range;
          try {
            range = parseRange(typed, apex);
          } catch (error) {
            // fc.domain() can produce names too long to fit under the apex.
            expect((error as CsiError).code).toBe('ERR_RANGE_INVALID');
            return;
          }
          expect(rangeOfZone(range.zone, apex)).toEqual(range);
          expect(parseRange(formatRange(range), apex)).toEqual(range);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('either parses or throws CsiError for any string', () => {
    const phoneish = fc
      .array(fc.constantFrom(...'+0123456789 ()-.tel:'), { maxLength: 40 })
      .map((c) => c.join(''));
    const emailish = fc
      .array(fc.constantFrom(...'aZ.@-_"\\ é[]:0mailto'), { maxLength: 40 })
      .map((c) => c.join(''));
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: 'binary', maxLength: 400 }), phoneish, emailish),
        (input) => {
          const parsed = tryParse(input);
          if (parsed !== undefined) expect(isCsi(parsed)).toBe(true);
          // The query-path helpers never throw on bad names.
          expect(() => nameToCsi(input)).not.toThrow();
          expect(() => rangeOfZone(input)).not.toThrow();
          try {
            parseRange(input);
          } catch (error) {
            expect(error).toBeInstanceOf(CsiError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});
