import type { DiscoveryResult, VerifiedMapping } from './types.js';

/**
 * A discovery result as the JSON API writes it (design §7): the fields of `DiscoveryResult` and
 * nothing else, in a fixed order — `csi`, `status`, `mappings`, `ttl`, then `stale` and `error`
 * when present.
 *
 * The text is also kept split around the TTL ({@link ResultText}), the one field that changes
 * while a result sits in the cache: a cached result is written again as `head + ttl + tail`,
 * without walking its mappings. Worked example: `{"csi":"tel:+44…","status":"none",
 * "mappings":[],"ttl":300}` is kept as head `{"csi":"tel:+44…","status":"none","mappings":[],
 * "ttl":` and tail `}`; 20 s later it is written with `280` between them.
 */

/** The JSON text of a result, split around its `ttl` value. */
export interface ResultText {
  /** Everything up to and including `"ttl":`. */
  readonly head: string;
  /** Everything after the TTL's digits, closing brace included. */
  readonly tail: string;
}

/** A result as a plain object with the API's fields, in the API's order. */
export function resultJson(result: DiscoveryResult): Record<string, unknown> {
  return {
    csi: result.csi,
    status: result.status,
    mappings: result.mappings.map(mappingJson),
    ttl: result.ttl,
    ...(result.stale === true ? { stale: true } : {}),
    ...(result.error === undefined
      ? {}
      : { error: { reason: result.error.reason, detail: result.error.detail } }),
  };
}

function mappingJson(m: VerifiedMapping): Record<string, unknown> {
  return {
    msps: m.msps.map((msp) => ({
      provider: msp.provider,
      tags: [...msp.tags],
      ...(msp.uri === undefined ? {} : { uri: msp.uri }),
    })),
    key: m.key,
    seq: m.seq,
    iat: m.iat,
    exp: m.exp,
    new: m.new,
    prover: m.prover,
    zone: m.zone,
    server: m.server,
  };
}

/** The text of `result` around its TTL: `head + String(ttl) + tail` is its JSON. */
export function resultText(result: DiscoveryResult): ResultText {
  const before = JSON.stringify({
    csi: result.csi,
    status: result.status,
    mappings: result.mappings.map(mappingJson),
  });
  const after = JSON.stringify({
    ...(result.stale === true ? { stale: true } : {}),
    ...(result.error === undefined
      ? {}
      : { error: { reason: result.error.reason, detail: result.error.detail } }),
  });
  return {
    // `{…"mappings":[…]}` without its closing brace, then the TTL's key.
    head: `${before.slice(0, -1)},"ttl":`,
    // `{}` adds nothing; `{"stale":true,…}` adds its members after a comma.
    tail: after === '{}' ? '}' : `,${after.slice(1)}`,
  };
}

/** The JSON of `result` with the TTL it carries. */
export function resultJsonText(result: DiscoveryResult, text = resultText(result)): string {
  return `${text.head}${jsonNumber(result.ttl)}${text.tail}`;
}

/** A number as JSON writes it (a TTL is a whole number; JSON has no NaN or Infinity). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}
