import { describe, expect, it } from 'vitest';
import {
  canonicalName,
  compareNames,
  isSubdomain,
  nameWireLength,
  parentName,
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
      '\u0001.z.example',
      '*.z.example',
      '\u00c8.z.example',
    ];
    const shuffled = [...ordered].reverse();
    expect(shuffled.sort(compareNames)).toEqual(ordered);
  });

  it('lowercases ASCII only and drops the trailing dot', () => {
    expect(canonicalName('Example.COM.')).toBe('example.com');
    expect(canonicalName('.')).toBe('.');
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
