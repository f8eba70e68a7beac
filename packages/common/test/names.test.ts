import { describe, expect, it } from 'vitest';
import {
  canonicalName,
  compareNames,
  formatLabels,
  isSubdomain,
  NameError,
  nameWireLength,
  parentName,
  parseLabels,
} from '../src/index.js';

describe('names', () => {
  it('orders names canonically as in the RFC 4034 §6.1 example', () => {
    // RFC 4034 §6.1 lists these names in canonical order.
    const ordered = [
      'example',
      'a.example',
      'yljkjljk.a.example',
      'Z.a.example',
      'zABC.a.EXAMPLE',
      'z.example',
      '\\001.z.example',
      '*.z.example',
      '\\200.z.example',
    ];
    const shuffled = [...ordered].reverse();
    expect(shuffled.sort(compareNames)).toEqual(ordered);
  });

  it('lowercases ASCII only and drops the trailing dot', () => {
    expect(canonicalName('Example.COM.')).toBe('example.com');
    expect(canonicalName('.')).toBe('.');
  });

  it('parses and formats RFC 1035 escapes', () => {
    expect(parseLabels('\\000.a\\.b.c').map((l) => [...l])).toEqual([[0], [97, 46, 98], [99]]);
    expect(formatLabels(parseLabels('\\065\\.x.Y.'))).toBe('A\\.x.Y');
    expect(canonicalName('\\065B.COM')).toBe('ab.com');
    expect(() => parseLabels('a..b')).toThrow(NameError);
    expect(() => parseLabels('\\256.b')).toThrow(NameError);
    expect(() => parseLabels(`${'a'.repeat(64)}.b`)).toThrow(/label over 63/);
    expect(() => parseLabels(Array(128).fill('a').join('.'))).toThrow(/name over 255/);
    expect(isSubdomain('x\\.example.com', 'example.com')).toBe(false);
  });

  it('knows subdomains, parents and wire lengths', () => {
    expect(isSubdomain('4.4.e164.mimi.arpa', 'E164.mimi.arpa')).toBe(true);
    expect(isSubdomain('xe164.mimi.arpa', 'e164.mimi.arpa')).toBe(false);
    expect(isSubdomain('anything', '.')).toBe(true);
    expect(parentName('a.b')).toBe('b');
    expect(parentName('b')).toBe('.');
    expect(parentName('.')).toBeUndefined();
    expect(nameWireLength('example.com')).toBe(13);
    expect(nameWireLength('.')).toBe(1);
  });
});
