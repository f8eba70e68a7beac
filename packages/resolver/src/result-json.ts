import type { DiscoveryResult, VerifiedMapping } from './types.js';

/**
 * A discovery result as JSON (design §7), for the JSON API and `mimi-discovery lookup --json`:
 * the fields of `DiscoveryResult` and nothing else, in a fixed order — `csi`, `status`,
 * `mappings`, `ttl`, then `stale` and `error` when present. {@link resultJson} is the one place
 * that says so; the text is that value serialized, never written another way.
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

/** The member `ttl` written with the value 0, as it appears in the text of {@link resultJson}. */
const TTL_MEMBER = ',"ttl":0';

/**
 * The text of {@link resultJson} around its TTL: `head + String(ttl) + tail` is its JSON. The
 * first `,"ttl":` of the text is the result's own member: every member before it is a string, a
 * status or the mappings, none of which has a `ttl` key, and inside a JSON string a quote is
 * always escaped, so the sequence cannot occur there.
 */
export function resultText(result: DiscoveryResult): ResultText {
  // Spreading keeps `ttl` where `resultJson` put it; only its value changes.
  const text = JSON.stringify({ ...resultJson(result), ttl: 0 });
  const at = text.indexOf(TTL_MEMBER);
  return {
    head: text.slice(0, at + TTL_MEMBER.length - 1),
    tail: text.slice(at + TTL_MEMBER.length),
  };
}

/**
 * The JSON text of `result` with the TTL it carries; `text`, when given, is its split text kept
 * from before (a cached result's), so nothing but the TTL is written again.
 */
export function resultJsonText(result: DiscoveryResult, text = resultText(result)): string {
  return `${text.head}${jsonNumber(result.ttl)}${text.tail}`;
}

/** A number as JSON writes it (a TTL is a whole number; JSON has no NaN or Infinity). */
function jsonNumber(value: number): string {
  return Number.isFinite(value) ? String(value) : 'null';
}
