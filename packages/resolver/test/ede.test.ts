import { describe, expect, it } from 'vitest';
import { CACHED_ERROR_EDE, EDE_MAX_TEXT_CHARS, failureEde, type Failure } from '../src/index.js';
import { parseDiscoveryResult, resultJson } from '../src/index.js';

/** Failures as Extended DNS Errors (RFC 8914, `ede.ts`), and through the JSON result. */

describe('failureEde', () => {
  it.each<[Failure, number]>([
    [{ kind: 'bogus', reason: 'signature-expired', detail: 'MAP of x' }, 7],
    [{ kind: 'bogus', reason: 'signature-not-yet-valid', detail: 'MAP of x' }, 8],
    [{ kind: 'bogus', reason: 'no-ds-match', detail: 'DNSKEY of z', zone: 'z' }, 9],
    [{ kind: 'bogus', reason: 'missing-dnskey', detail: 'DNSKEY of z' }, 9],
    [{ kind: 'bogus', reason: 'missing-signature', detail: 'MAP of x' }, 10],
    [{ kind: 'bogus', reason: 'missing-denial', detail: 'x' }, 12],
    [{ kind: 'bogus', reason: 'unsupported-algorithm', detail: 'x' }, 1],
    [{ kind: 'bogus', reason: 'bogus-signature', detail: 'x' }, 6],
    [{ kind: 'bogus', reason: 'limit-verifications', detail: 'x' }, 6],
    [{ kind: 'error', reason: 'timeout', detail: 'x' }, 22],
    [{ kind: 'error', reason: 'servfail', detail: 'x', zone: 'z' }, 22],
    [{ kind: 'error', reason: 'servfail', detail: 'x' }, 23],
    [{ kind: 'error', reason: 'limit', detail: 'x' }, 0],
  ])('%j is INFO-CODE %i', (failure, code) => {
    const ede = failureEde(failure);
    expect(ede.infoCode).toBe(code);
    expect(ede.text).toBe(`${failure.reason}: ${failure.detail}`);
  });

  it('cuts a long detail', () => {
    const ede = failureEde({ kind: 'error', reason: 'servfail', detail: 'x'.repeat(1000) });
    expect(ede.text).toHaveLength(EDE_MAX_TEXT_CHARS);
    expect(CACHED_ERROR_EDE.infoCode).toBe(13);
  });

  it('goes through the JSON result and back', () => {
    const result = {
      csi: 'tel:+442079460018',
      status: 'error' as const,
      msps: [],
      mappings: [],
      ttl: 0,
      error: { reason: 'bogus' as const, detail: 'd', ede: { infoCode: 7, text: 't' } },
    };
    const json = JSON.parse(JSON.stringify(resultJson(result))) as unknown;
    expect(json).toMatchObject({ error: { ede: { infoCode: 7, text: 't' } } });
    expect(parseDiscoveryResult(json)).toEqual(result);
    // A malformed one is left out, the rest kept.
    const bad = {
      ...(json as object),
      error: { reason: 'bogus', detail: 'd', ede: { infoCode: -1 } },
    };
    expect(parseDiscoveryResult(bad)?.error).toEqual({ reason: 'bogus', detail: 'd' });
  });
});
