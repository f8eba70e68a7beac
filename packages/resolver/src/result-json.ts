import {
  isJsonObject,
  parseCsi,
  PREF_MAX,
  PREF_MIN,
  type MspEntry,
  type RankedMsp,
} from '@mimi-discovery/common';
import type { CsiMemo } from './csi-memo.js';
import type {
  DiscoveryErrorReason,
  DiscoveryResult,
  DiscoveryStatus,
  OpenedBox,
  SealedJson,
  VerifiedMapping,
} from './types.js';

/**
 * A discovery result as JSON (design §7), for the JSON API and `mimi-discovery lookup --json`:
 * the fields of `DiscoveryResult` and nothing else, in a fixed order — `csi`, `status`, `msps`,
 * `mappings`, `ttl`, then `stale`, `error` and `unopened` when present; in a ranked MSP
 * `provider`, `tags`, `uri?`, `contexts`, `pref?`, `sameMsp`, `key`, `zone`, `audience?`; in a
 * mapping `msps`, `sealed?`, `opened?`, `key`, `seq`, `iat`, `exp`, `new`, `prover`, `zone`,
 * `server`. {@link resultJson} is the one place that says so; the text is that value
 * serialized, never written another way.
 *
 * The text is also kept split around the TTL ({@link ResultText}), the one field that changes
 * while a result sits in the cache: a cached result is written again as `head + ttl + tail`,
 * without walking its mappings. Worked example: `{"csi":"tel:+44…","status":"none","msps":[],
 * "mappings":[],"ttl":300}` is kept as head `{"csi":"tel:+44…","status":"none","msps":[],
 * "mappings":[],"ttl":` and tail `}`; 20 s later it is written with `280` between them.
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
    msps: result.msps.map(rankedJson),
    mappings: result.mappings.map(mappingJson),
    ttl: result.ttl,
    ...(result.stale === true ? { stale: true } : {}),
    ...(result.error === undefined
      ? {}
      : {
          error: {
            reason: result.error.reason,
            detail: result.error.detail,
            ...(result.error.ede === undefined
              ? {}
              : { ede: { infoCode: result.error.ede.infoCode, text: result.error.ede.text } }),
          },
        }),
    ...(result.unopened === undefined ? {} : { unopened: result.unopened }),
  };
}

function rankedJson(msp: RankedMsp): Record<string, unknown> {
  return {
    provider: msp.provider,
    tags: [...msp.tags],
    ...(msp.uri === undefined ? {} : { uri: msp.uri }),
    contexts: [...msp.contexts],
    ...(msp.pref === undefined ? {} : { pref: msp.pref }),
    sameMsp: msp.sameMsp,
    key: msp.key,
    zone: msp.zone,
    ...(msp.audience === undefined ? {} : { audience: msp.audience }),
  };
}

function entryJson(msp: MspEntry): Record<string, unknown> {
  return {
    provider: msp.provider,
    tags: [...msp.tags],
    ...(msp.uri === undefined ? {} : { uri: msp.uri }),
  };
}

function mappingJson(m: VerifiedMapping): Record<string, unknown> {
  return {
    msps: m.msps.map(entryJson),
    ...(m.sealed === undefined
      ? {}
      : { sealed: m.sealed.map((box) => ({ kid: box.kid, enc: box.enc, ct: box.ct })) }),
    ...(m.opened === undefined
      ? {}
      : {
          opened: m.opened.map((box) => ({
            audience: box.audience,
            msps: box.msps.map(entryJson),
          })),
        }),
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
 * status, the ranked MSPs or the mappings, none of which has a `ttl` key, and inside a JSON
 * string a quote is always escaped, so the sequence cannot occur there.
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

// The parser of the same format, for the clients of the JSON API (direct and through a relay).

const STATUSES: ReadonlySet<string> = new Set<DiscoveryStatus>(['none', 'empty', 'found', 'error']);
const REASONS: ReadonlySet<string> = new Set<DiscoveryErrorReason>([
  'bogus',
  'timeout',
  'limit',
  'invalid-csi',
  'servfail',
]);

/**
 * The CSI a result for `input` names: the canonical CSI, or the input as given when the
 * resolver found it not to be one (json-api.ts: a batch's `invalid-csi` results). `memo`, when
 * given, parses the input instead of `parseCsi` (a client that sends the same contacts again).
 */
export function expectedCsi(
  input: string,
  result: DiscoveryResult,
  memo?: CsiMemo,
): string | undefined {
  if (result.error?.reason === 'invalid-csi') return input;
  try {
    if (memo === undefined) return parseCsi(input);
    const parsed = memo.parse(input);
    return typeof parsed === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A discovery result from its JSON (as `resultJson` writes it and the JSON API answers it), or
 * undefined when `value` does not have that shape: the fields of `DiscoveryResult` with their
 * types, `status` and `error.reason` from their lists, `error` exactly when the status is
 * `error`, `msps` always (empty unless `found`), a mapping's `sealed` and `opened` absent or
 * non-empty, `unopened` a whole number above 0 when present. Fields it does not know are left
 * out (a newer API may add some). Byte strings stay
 * base64url text and signatures are not checked again: the resolver verified them, and the
 * result says which keys it trusted.
 *
 * `parseDiscoveryResult(JSON.parse(JSON.stringify(resultJson(r))))` equals `r`.
 */
export function parseDiscoveryResult(value: unknown): DiscoveryResult | undefined {
  if (!isJsonObject(value)) return undefined;
  const { csi, status, msps, mappings, ttl, stale, error, unopened } = value;
  if (typeof csi !== 'string' || typeof status !== 'string' || !STATUSES.has(status)) {
    return undefined;
  }
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) return undefined;
  if (stale !== undefined && typeof stale !== 'boolean') return undefined;
  if (unopened !== undefined && (!isWhole(unopened) || unopened === 0)) return undefined;
  const ranked = parseList(msps, parseRanked);
  if (ranked === undefined || (status !== 'found' && ranked.length > 0)) return undefined;
  const verified = parseList(mappings, parseMapping);
  if (verified === undefined) return undefined;
  const failure = error === undefined ? undefined : parseFailure(error);
  if ((status === 'error') !== (failure !== undefined)) return undefined;
  if (error !== undefined && failure === undefined) return undefined;
  // Built with the fields it has rather than spread from conditional objects: a contact sync
  // parses thousands of these per batch, and every temporary object is garbage to collect.
  const result: DiscoveryResult = {
    csi,
    status: status as DiscoveryStatus,
    msps: ranked,
    mappings: verified,
    ttl,
  };
  if (stale === true) result.stale = true;
  if (failure !== undefined) result.error = failure;
  if (unopened !== undefined) result.unopened = unopened;
  return result;
}

/** A value's own properties made writable, to build an object field by field. */
type Writable<T> = { -readonly [K in keyof T]: T[K] };

/** Each element of `value` parsed, or undefined when it is no list or one element is bad. */
function parseList<T>(value: unknown, parse: (item: unknown) => T | undefined): T[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list = value as unknown[];
  const items = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) {
    const parsed = parse(list[i]);
    if (parsed === undefined) return undefined;
    items[i] = parsed;
  }
  return items;
}

/** A list that is absent or non-empty (a mapping's `sealed` and `opened`). */
function parseOptionalList<T>(
  value: unknown,
  parse: (item: unknown) => T | undefined,
): T[] | undefined | 'bad' {
  if (value === undefined) return undefined;
  const items = parseList(value, parse);
  return items === undefined || items.length === 0 ? 'bad' : items;
}

/** A copy of `value` when it is a list of strings, else undefined. */
function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const list = value as unknown[];
  for (let i = 0; i < list.length; i++) if (typeof list[i] !== 'string') return undefined;
  return list.slice() as string[];
}

function parseRanked(value: unknown): RankedMsp | undefined {
  if (!isJsonObject(value)) return undefined;
  const { provider, uri, pref, sameMsp, key, zone, audience } = value;
  const tags = stringList(value['tags']);
  const contexts = stringList(value['contexts']);
  if (
    typeof provider !== 'string' ||
    tags === undefined ||
    (uri !== undefined && typeof uri !== 'string') ||
    contexts === undefined ||
    (pref !== undefined && (!isWhole(pref) || pref < PREF_MIN || pref > PREF_MAX)) ||
    typeof sameMsp !== 'boolean' ||
    typeof key !== 'string' ||
    typeof zone !== 'string' ||
    (audience !== undefined && typeof audience !== 'string')
  ) {
    return undefined;
  }
  const ranked: Writable<RankedMsp> = { provider, tags, contexts, sameMsp, key, zone };
  if (uri !== undefined) ranked.uri = uri;
  if (pref !== undefined) ranked.pref = pref;
  if (audience !== undefined) ranked.audience = audience;
  return ranked;
}

function parseSealed(value: unknown): SealedJson | undefined {
  if (!isJsonObject(value)) return undefined;
  const { kid, enc, ct } = value;
  if (typeof kid !== 'string' || typeof enc !== 'string' || typeof ct !== 'string') {
    return undefined;
  }
  return { kid, enc, ct };
}

function parseOpened(value: unknown): OpenedBox | undefined {
  if (!isJsonObject(value)) return undefined;
  const { audience, msps } = value;
  const entries = parseList(msps, parseMsp);
  if (typeof audience !== 'string' || entries === undefined) return undefined;
  return { audience, msps: entries };
}

function parseMapping(value: unknown): VerifiedMapping | undefined {
  if (!isJsonObject(value)) return undefined;
  const { msps, sealed, opened, key, seq, iat, exp, prover, zone, server } = value;
  const isNew = value['new'];
  if (
    typeof key !== 'string' ||
    typeof prover !== 'string' ||
    typeof zone !== 'string' ||
    typeof server !== 'string' ||
    typeof isNew !== 'boolean' ||
    !isWhole(seq) ||
    !isWhole(iat) ||
    !isWhole(exp)
  ) {
    return undefined;
  }
  const entries = parseList(msps, parseMsp);
  const boxes = parseOptionalList(sealed, parseSealed);
  const opens = parseOptionalList(opened, parseOpened);
  if (entries === undefined || boxes === 'bad' || opens === 'bad') return undefined;
  const mapping: Writable<VerifiedMapping> = {
    msps: entries,
    key,
    seq,
    iat,
    exp,
    new: isNew,
    prover,
    zone,
    server,
  };
  if (boxes !== undefined) mapping.sealed = boxes;
  if (opens !== undefined) mapping.opened = opens;
  return mapping;
}

function parseMsp(value: unknown): MspEntry | undefined {
  if (!isJsonObject(value)) return undefined;
  const { provider, uri } = value;
  const tags = stringList(value['tags']);
  if (typeof provider !== 'string' || tags === undefined) return undefined;
  if (uri !== undefined && typeof uri !== 'string') return undefined;
  return uri === undefined ? { provider, tags } : { provider, tags, uri };
}

function parseFailure(value: unknown): DiscoveryResult['error'] | undefined {
  if (!isJsonObject(value)) return undefined;
  const { reason, detail, ede } = value;
  if (typeof reason !== 'string' || !REASONS.has(reason) || typeof detail !== 'string') {
    return undefined;
  }
  // The Extended DNS Error (RFC 8914) is kept when well formed, else left out.
  const extended =
    isJsonObject(ede) &&
    typeof ede.infoCode === 'number' &&
    Number.isInteger(ede.infoCode) &&
    ede.infoCode >= 0 &&
    ede.infoCode <= 0xffff &&
    typeof ede.text === 'string'
      ? { ede: { infoCode: ede.infoCode, text: ede.text } }
      : {};
  return { reason: reason as DiscoveryErrorReason, detail, ...extended };
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
