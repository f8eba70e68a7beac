import {
  bestPref,
  passesFilter,
  rankMsps,
  type MspEntry,
  type MspFilter,
  type RankInput,
} from '@mimi-discovery/common';
import type { DiscoveryResult, VerifiedMapping } from './types.js';

/**
 * A discovery result as one sender sees it (design §4 "Preferences", docs/protocol.md §9): the
 * entries it may not use left out, every entry it may use ranked in the recipient's order, the
 * mappings in the same order.
 *
 * Worked example: mappings K1 (iat 200) `[wire.example "business" "pref:2", chat.example
 * "personal" "pref:1"]` and K2 (iat 300) `[text.example]`; a sender in context `business`
 * sees `msps` `[wire.example, text.example]` (pref 2 first, then the unranked one), K1 with
 * only `wire.example` and then K2 (best pref 2 before unranked). The status stays what the
 * standing mappings make it: `found` with `msps: []` means "reachable, but not for this sender".
 *
 * The resolver makes its cached results with its identity filter (`msp`) and derives each
 * request's view with the context added; since {@link passesFilter} only ever drops, filtering a
 * view again with the same identity changes nothing, so the derivation is the same function.
 */

/** The entries of a result's mappings to rank: public ones first, then the opened boxes'. */
export function rankInputs(mappings: readonly VerifiedMapping[]): RankInput[] {
  const inputs: RankInput[] = [];
  for (const m of mappings) {
    const from = { key: m.key, iat: m.iat, zone: m.zone };
    m.msps.forEach((entry, index) => inputs.push({ entry, index, ...from }));
    for (const box of m.opened ?? []) {
      box.msps.forEach((entry, index) =>
        inputs.push({ entry, index, audience: box.audience, ...from }),
      );
    }
  }
  return inputs;
}

/** The entries a mapping shows a sender: its public ones and those of the boxes it opened. */
function visibleEntries(m: VerifiedMapping): MspEntry[] {
  return [...m.msps, ...(m.opened ?? []).flatMap((box) => box.msps)];
}

/**
 * Mappings in rank order: by the best `pref` among the entries they show (unranked last), then
 * the newest `iat`, then the key (string order), then the zone; the same mappings in any order
 * give the same list.
 */
export function orderMappings(mappings: readonly VerifiedMapping[]): VerifiedMapping[] {
  const ranked = mappings.map((m) => ({ m, pref: bestPref(visibleEntries(m)) }));
  ranked.sort(
    (a, b) =>
      a.pref - b.pref ||
      b.m.iat - a.m.iat ||
      compareStrings(a.m.key, b.m.key) ||
      compareStrings(a.m.zone, b.m.zone),
  );
  return ranked.map(({ m }) => m);
}

function compareStrings(a: string, b: string): number {
  return a === b ? 0 : a < b ? -1 : 1;
}

/** A mapping with only the entries (public and opened) that pass `filter`. */
export function filterMapping(m: VerifiedMapping, filter: MspFilter): VerifiedMapping {
  const { opened, ...rest } = m;
  return {
    ...rest,
    msps: m.msps.filter((entry) => passesFilter(entry, filter)),
    ...(opened === undefined
      ? {}
      : {
          opened: opened.map((box) => ({
            audience: box.audience,
            msps: box.msps.filter((entry) => passesFilter(entry, filter)),
          })),
        }),
  };
}

/**
 * `result` as the sender of `filter` sees it: every mapping's entries filtered, `msps` ranked
 * over them, the mappings in rank order. A result that is not `found` has no entries to show:
 * `msps` is empty, the rest unchanged. Pure; `result` is not changed.
 */
export function senderView(result: DiscoveryResult, filter: MspFilter): DiscoveryResult {
  if (result.status !== 'found') {
    return { ...result, msps: [], mappings: orderMappings(result.mappings) };
  }
  const mappings = orderMappings(result.mappings.map((m) => filterMapping(m, filter)));
  return { ...result, msps: rankMsps(rankInputs(mappings), filter), mappings };
}
