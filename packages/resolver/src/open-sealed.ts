import {
  openSealed,
  preferencesOf,
  SealedError,
  type AudienceKey,
  type MspEntry,
  type MspFilter,
} from '@mimi-discovery/common';
import { senderView } from './sender-view.js';
import type { DiscoveryResult, OpenedBox, SealedJson, VerifiedMapping } from './types.js';

/**
 * Opening a result's sealed boxes with the audience keys a sender holds (design §4 "Sealed
 * mappings", docs/protocol.md §4.6), in the sender's own process: the in-process resolver's
 * `discover(…, { audienceKeys })` and the JSON API clients'. The keys are never sent anywhere;
 * the resolver that served the result never reads a box.
 *
 * Worked example: a mapping of key K for `tel:+442079460018` carries boxes with kids `k1` and
 * `k2`; the sender holds the audience key of `k2`. The box `k2` is opened with `openSealed` for
 * that CSI and K (its AAD binds both, so a box copied into another mapping does not open), its
 * entries filtered as the public ones are, and it moves from the mapping's `sealed` to its
 * `opened` as `{ audience: "k2", msps }`; `k1` stays in `sealed`. `msps` is ranked again over
 * the public and the opened entries, and the mappings ordered again.
 *
 * A box whose kid matches but that does not open (`SealedError`: a key of the same id that is
 * not the one, a box sealed for another CSI or key, a malformed plaintext) is left in `sealed`
 * and counted in the result's `unopened`; nothing is thrown, since the other boxes and the
 * public entries still stand.
 */

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64url');

/** base64url without padding, as `resultJson` writes byte strings. */
const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** The octets of base64url `text`, or undefined when it is not base64url. */
function octetsOf(text: string): Uint8Array | undefined {
  if (!BASE64URL.test(text) || text.length % 4 === 1) return undefined;
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

/** The entries of `box`, or undefined when it does not open with `audience`. */
async function openBox(
  csi: string,
  key: Uint8Array,
  box: SealedJson,
  audience: AudienceKey,
): Promise<MspEntry[] | undefined> {
  const kid = octetsOf(box.kid);
  const enc = octetsOf(box.enc);
  const ct = octetsOf(box.ct);
  if (kid === undefined || enc === undefined || ct === undefined) return undefined;
  try {
    return await openSealed(csi, key, { kid, enc, ct }, audience);
  } catch (error) {
    // `ERR_AUDIENCE_KEY` is the caller's key that is no key: a fault, not a box that fails.
    if (error instanceof SealedError && error.code !== 'ERR_AUDIENCE_KEY') return undefined;
    throw error;
  }
}

/** A mapping with the boxes that `keys` open moved to `opened`; and how many failed. */
async function openMapping(
  csi: string,
  mapping: VerifiedMapping,
  keys: ReadonlyMap<string, AudienceKey>,
): Promise<{ mapping: VerifiedMapping; unopened: number }> {
  const key = octetsOf(mapping.key);
  if (mapping.sealed === undefined || key === undefined) return { mapping, unopened: 0 };
  const sealed: SealedJson[] = [];
  const opened: OpenedBox[] = [...(mapping.opened ?? [])];
  let unopened = 0;
  for (const box of mapping.sealed) {
    const audience = keys.get(box.kid);
    const entries = audience === undefined ? undefined : await openBox(csi, key, box, audience);
    if (entries === undefined) {
      sealed.push(box);
      if (audience !== undefined) unopened++;
      continue;
    }
    opened.push({ audience: box.kid, msps: entries });
  }
  const { sealed: _served, opened: _before, ...rest } = mapping;
  return {
    mapping: {
      ...rest,
      ...(sealed.length === 0 ? {} : { sealed }),
      ...(opened.length === 0 ? {} : { opened }),
    },
    unopened,
  };
}

/**
 * The MSP whose `same-msp` entries a result already holds publicly, when they all name one: the
 * resolver that made it has that identity and vouched for the sender's MSP (it drops every other
 * MSP's). Undefined when there are none, or when they disagree.
 */
function vouchedMsp(result: DiscoveryResult): string | undefined {
  const providers = new Set<string>();
  for (const m of result.mappings) {
    for (const entry of m.msps) {
      if (preferencesOf(entry.tags).sameMsp) providers.add(entry.provider);
    }
  }
  return providers.size === 1 ? [...providers][0] : undefined;
}

/**
 * `result` with each sealed box whose `kid` matches one of `keys` opened (see the module
 * comment), then every entry, public and opened, filtered with `filter` and ranked
 * (`sender-view.ts`). Without `filter.msp`, the MSP the result's resolver vouched for
 * ({@link vouchedMsp}) stands in, so that opening boxes never drops a public entry the resolver
 * passed. `unopened` counts, with any the result counted before, the boxes that matched a key
 * and did not open; it is absent when none did. `result` is not changed.
 */
export async function openResult(
  result: DiscoveryResult,
  keys: readonly AudienceKey[],
  filter: MspFilter,
): Promise<DiscoveryResult> {
  if (result.status !== 'found') return result;
  const byKid = new Map(keys.map((k) => [b64(k.kid), k] as const));
  const opened = await Promise.all(result.mappings.map((m) => openMapping(result.csi, m, byKid)));
  const unopened = opened.reduce((n, o) => n + o.unopened, result.unopened ?? 0);
  const msp = filter.msp ?? vouchedMsp(result);
  const view = senderView(
    { ...result, mappings: opened.map((o) => o.mapping) },
    msp === undefined ? withoutMsp(filter) : { ...filter, msp },
  );
  const { unopened: _before, ...rest } = view;
  return unopened === 0 ? rest : { ...rest, unopened };
}

function withoutMsp(filter: MspFilter): MspFilter {
  return filter.context === undefined ? {} : { context: filter.context };
}
