import { ConfigError } from '@mimi-discovery/common';
import { describe, expect, it } from 'vitest';
import { formatRootHints, parseRootHints, type RootHints } from '../src/index.js';
import { thrownBy } from '../../../test/helpers/rejection.js';

// Root hints are read with the one schema of the format (`rootHintsSchema` of common), the one
// the resolver reads them with: what the root writes, the resolver accepts, and the reverse.

const HINTS: RootHints = {
  apex: 'mimi.arpa',
  servers: [
    {
      name: 'ns1.mimi.arpa',
      addresses: ['127.0.0.1', '::1'],
      port: 5300,
      doh: 'https://127.0.0.1:8443/dns-query',
    },
  ],
};

const errorOf = (fn: () => unknown): ConfigError => thrownBy(fn, ConfigError);

describe('parseRootHints', () => {
  it('reads back what formatRootHints writes', () => {
    expect(parseRootHints(formatRootHints(HINTS))).toEqual(HINTS);
  });

  it('gives the apex and names in canonical form', () => {
    const text =
      '{ "apex": "MIMI.arpa.", "servers": [{ "name": "NS1.mimi.arpa", "addresses": ["192.0.2.1"] }] }';
    expect(parseRootHints(text)).toEqual({
      apex: 'mimi.arpa',
      servers: [{ name: 'ns1.mimi.arpa', addresses: ['192.0.2.1'] }],
    });
  });

  it.each<[string, string, string, string]>([
    [
      'text that is not JSON',
      '{',
      'ERR_CONFIG_SYNTAX',
      'hints.json: invalid JSON at line 1, column 2: ',
    ],
    [
      'an unknown key',
      '{ "apex": "mimi.arpa", "servers": [{ "name": "ns1.mimi.arpa", "addresses": ["::1"], "ttl": 1 }] }',
      'ERR_CONFIG_INVALID',
      'hints.json: unknown key "ttl" in servers[0]',
    ],
    [
      'a server that cannot be reached',
      '{ "apex": "mimi.arpa", "servers": [{ "name": "ns1.mimi.arpa", "addresses": [] }] }',
      'ERR_CONFIG_INVALID',
      'hints.json: servers[0]: needs addresses or a doh URL: the server cannot be reached otherwise',
    ],
    [
      'an address that is a host name',
      '{ "apex": "mimi.arpa", "servers": [{ "name": "ns1.mimi.arpa", "addresses": ["localhost"] }] }',
      'ERR_CONFIG_INVALID',
      'hints.json: servers[0].addresses[0]: expected an IPv4 or IPv6 address',
    ],
  ])('refuses %s, naming the file and the key', (_what, text, code, message) => {
    const error = errorOf(() => parseRootHints(text, 'hints.json'));
    expect(error.code).toBe(code);
    expect(error.message.startsWith(message)).toBe(true);
  });
});
