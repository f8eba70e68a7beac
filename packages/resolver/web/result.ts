/**
 * The discovery result of `GET /v1/discover` as the lookup page reads it: the JSON API's result
 * shape (`src/result-json.ts`, `resultJson`), checked field by field where it enters the page.
 *
 * The resolver's own parser (`parseDiscoveryResult`) cannot be bundled: it imports the common
 * package's index, which pulls in the server runtime. This reader keeps to the fields the page
 * shows, and refuses a value whose shape is not the API's, so the page never shows a field it
 * misread; byte strings stay the base64url text the API sends, and nothing is verified again
 * (the resolver verified it: the page shows which keys it trusted).
 */

/** Discovery status (design §6, R5). */
export type Status = 'none' | 'empty' | 'found' | 'error';

/** An MSP entry of a mapping, as the recipient listed it. */
export interface Entry {
  readonly provider: string;
  readonly tags: readonly string[];
  readonly uri?: string;
}

/** An entry of the ranked list: what a sender uses, in the recipient's order. */
export interface Ranked extends Entry {
  readonly contexts: readonly string[];
  readonly pref?: number;
  readonly sameMsp: boolean;
  /** The recipient key of the mapping it came from, base64url. */
  readonly key: string;
  /** The zone that served that mapping. */
  readonly zone: string;
  /** The audience key id of the box it came from (only for a client that opened one). */
  readonly audience?: string;
}

/** A sealed box of a mapping: its audience key id, base64url; the box is never opened here. */
export interface Sealed {
  readonly kid: string;
}

/** A verified mapping and where it came from. */
export interface Mapping {
  readonly msps: readonly Entry[];
  readonly sealed: readonly Sealed[];
  readonly key: string;
  readonly seq: number;
  readonly iat: number;
  readonly exp: number;
  readonly isNew: boolean;
  readonly prover: string;
  readonly zone: string;
  readonly server: string;
}

/** Why a resolution failed, with its Extended DNS Error (RFC 8914) when the resolver gave one. */
export interface Failure {
  readonly reason: string;
  readonly detail: string;
  readonly ede?: { readonly infoCode: number; readonly text: string };
}

/** One discovery result. */
export interface Result {
  readonly csi: string;
  readonly status: Status;
  readonly msps: readonly Ranked[];
  readonly mappings: readonly Mapping[];
  readonly ttl: number;
  readonly stale: boolean;
  readonly error?: Failure;
}

type Json = Record<string, unknown>;

const STATUSES: ReadonlySet<string> = new Set<Status>(['none', 'empty', 'found', 'error']);

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isWhole(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) && value.every((item: unknown) => typeof item === 'string')
    ? [...(value as string[])]
    : undefined;
}

/** Each element parsed, or undefined when `value` is no list or one element is bad. */
function list<T>(value: unknown, parse: (item: unknown) => T | undefined): T[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const items: T[] = [];
  for (const item of value as unknown[]) {
    const parsed = parse(item);
    if (parsed === undefined) return undefined;
    items.push(parsed);
  }
  return items;
}

function entry(value: unknown): Entry | undefined {
  if (!isObject(value)) return undefined;
  const { provider, uri } = value;
  const tags = strings(value['tags']);
  if (typeof provider !== 'string' || tags === undefined) return undefined;
  if (uri !== undefined && typeof uri !== 'string') return undefined;
  return { provider, tags, ...(uri === undefined ? {} : { uri }) };
}

function ranked(value: unknown): Ranked | undefined {
  const base = entry(value);
  if (base === undefined || !isObject(value)) return undefined;
  const { pref, sameMsp, key, zone, audience } = value;
  const contexts = strings(value['contexts']);
  if (
    contexts === undefined ||
    (pref !== undefined && !isWhole(pref)) ||
    typeof sameMsp !== 'boolean' ||
    typeof key !== 'string' ||
    typeof zone !== 'string' ||
    (audience !== undefined && typeof audience !== 'string')
  ) {
    return undefined;
  }
  return {
    ...base,
    contexts,
    ...(pref === undefined ? {} : { pref }),
    sameMsp,
    key,
    zone,
    ...(audience === undefined ? {} : { audience }),
  };
}

function sealed(value: unknown): Sealed | undefined {
  return isObject(value) && typeof value['kid'] === 'string' ? { kid: value['kid'] } : undefined;
}

function mapping(value: unknown): Mapping | undefined {
  if (!isObject(value)) return undefined;
  const { key, seq, iat, exp, prover, zone, server } = value;
  const isNew = value['new'];
  const msps = list(value['msps'], entry);
  const boxes = value['sealed'] === undefined ? [] : list(value['sealed'], sealed);
  if (
    msps === undefined ||
    boxes === undefined ||
    typeof key !== 'string' ||
    !isWhole(seq) ||
    !isWhole(iat) ||
    !isWhole(exp) ||
    typeof isNew !== 'boolean' ||
    typeof prover !== 'string' ||
    typeof zone !== 'string' ||
    typeof server !== 'string'
  ) {
    return undefined;
  }
  return { msps, sealed: boxes, key, seq, iat, exp, isNew, prover, zone, server };
}

function failure(value: unknown): Failure | undefined {
  if (!isObject(value)) return undefined;
  const { reason, detail, ede } = value;
  if (typeof reason !== 'string' || typeof detail !== 'string') return undefined;
  const extended =
    isObject(ede) && isWhole(ede['infoCode']) && typeof ede['text'] === 'string'
      ? { ede: { infoCode: ede['infoCode'], text: ede['text'] } }
      : {};
  return { reason, detail, ...extended };
}

/**
 * The result in `value` (the parsed JSON of a 200 of `GET /v1/discover`), or undefined when it
 * does not have the API's shape: `csi` and `status` (one of the four), `msps` and `mappings`
 * lists of well-formed items, `ttl` a whole number, `error` exactly when the status is `error`.
 */
export function readResult(value: unknown): Result | undefined {
  if (!isObject(value)) return undefined;
  const { csi, status, ttl, stale, error } = value;
  if (typeof csi !== 'string' || typeof status !== 'string' || !STATUSES.has(status)) {
    return undefined;
  }
  if (!isWhole(ttl) || (stale !== undefined && typeof stale !== 'boolean')) return undefined;
  const msps = list(value['msps'], ranked);
  const mappings = list(value['mappings'], mapping);
  if (msps === undefined || mappings === undefined) return undefined;
  const failed = error === undefined ? undefined : failure(error);
  if ((status === 'error') !== (failed !== undefined)) return undefined;
  return {
    csi,
    status: status as Status,
    msps,
    mappings,
    ttl,
    stale: stale === true,
    ...(failed === undefined ? {} : { error: failed }),
  };
}
