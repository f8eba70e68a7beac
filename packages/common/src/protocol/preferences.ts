import type { MspEntry } from './signed.js';

/**
 * The recipient's preferences (R2; design §4 "Preferences", docs/protocol.md §4.2): a documented
 * vocabulary inside the tags of an MSP entry, signed with the mapping like every tag.
 *
 * | tag | meaning |
 * |---|---|
 * | `personal`, `business` | a context: the entry is for senders in that context |
 * | `ctx:<name>` | a context the recipient names (a group, a club: `ctx:soccer`) |
 * | `pref:<n>` | the entry's rank across every mapping of the recipient, 1 first |
 * | `same-msp` | "same MSP only": only a sender on this entry's provider may use it |
 *
 * Any other tag (`primary`, `mls`) is free-form and means nothing here. An entry with no context
 * tag is for every context; a sender naming no context sees every entry.
 *
 * A DP and the CLI refuse a mapping whose vocabulary tags are malformed
 * ({@link checkPreferenceTags}); a resolver reads what it is given leniently
 * ({@link preferencesOf} ignores a malformed vocabulary tag), since a mapping that verifies is
 * the recipient's word and an older or newer publisher may spell tags it does not know.
 *
 * Ranking ({@link rankMsps}) is what answers the journeys "no random pick among ten mappings"
 * and "no broadcast to every app": the sender takes the first entry it can use, and the order
 * is the same for every sender and every resolver given the same mappings.
 */

/** Lowest `pref:<n>`. */
export const PREF_MIN = 1;
/** Highest `pref:<n>`: three digits are enough to order every entry a recipient may have. */
export const PREF_MAX = 999;
/** Longest `<name>` of a `ctx:<name>` context. */
export const MAX_CONTEXT_NAME_OCTETS = 31;

/** A context: `personal`, `business` or `ctx:<name>`. */
export type Context = string;

/** The contexts with a fixed name. */
export const NAMED_CONTEXTS = Object.freeze(['personal', 'business'] as const);
/** The tag of "same MSP only". */
export const SAME_MSP_TAG = 'same-msp';
/** The prefix of a rank tag. */
export const PREF_TAG_PREFIX = 'pref:';
/** The prefix of a context the recipient names. */
export const CONTEXT_TAG_PREFIX = 'ctx:';

const CONTEXT_NAME = new RegExp(`^[a-z0-9][a-z0-9-]{0,${MAX_CONTEXT_NAME_OCTETS - 1}}$`);
const PREF_VALUE = /^[1-9][0-9]{0,2}$/;

/** What the vocabulary says of one entry. */
export interface Preferences {
  /** In tag order, each once. */
  readonly contexts: readonly Context[];
  /** Absent: unranked (after every ranked entry). */
  readonly pref?: number;
  readonly sameMsp: boolean;
}

/** Whether `value` is a context as a sender names one (`personal`, `business`, `ctx:<name>`). */
export function isContext(value: string): boolean {
  if ((NAMED_CONTEXTS as readonly string[]).includes(value)) return true;
  return (
    value.startsWith(CONTEXT_TAG_PREFIX) &&
    CONTEXT_NAME.test(value.slice(CONTEXT_TAG_PREFIX.length))
  );
}

/** The rank of a well-formed `pref:<n>` tag, or undefined. */
function prefOf(tag: string): number | undefined {
  if (!tag.startsWith(PREF_TAG_PREFIX)) return undefined;
  const digits = tag.slice(PREF_TAG_PREFIX.length);
  if (!PREF_VALUE.test(digits)) return undefined;
  const n = Number(digits);
  return n >= PREF_MIN && n <= PREF_MAX ? n : undefined;
}

/**
 * Reads the vocabulary of one entry's tags, leniently: a malformed vocabulary tag is ignored, and
 * of two `pref:` tags (which {@link checkPreferenceTags} refuses) none counts.
 */
export function preferencesOf(tags: readonly string[]): Preferences {
  const contexts: Context[] = [];
  const prefs: number[] = [];
  let sameMsp = false;
  for (const tag of tags) {
    if (tag === SAME_MSP_TAG) sameMsp = true;
    else if (isContext(tag)) {
      if (!contexts.includes(tag)) contexts.push(tag);
    } else {
      const pref = prefOf(tag);
      if (pref !== undefined) prefs.push(pref);
    }
  }
  const pref = prefs.length === 1 ? prefs[0] : undefined;
  return pref === undefined ? { contexts, sameMsp } : { contexts, pref, sameMsp };
}

/**
 * The first problem of an entry's tags under the vocabulary, as a sentence, or undefined when
 * there is none: a `pref:` tag that is not `pref:1` to `pref:999` without leading zeros, two
 * `pref:` tags, a `ctx:` tag whose name is not 1 to 31 of `a-z`, `0-9` and `-` (not first), or a
 * tag repeated.
 */
export function checkPreferenceTags(tags: readonly string[]): string | undefined {
  let prefs = 0;
  const seen = new Set<string>();
  for (const tag of tags) {
    if (seen.has(tag)) return `the tag ${JSON.stringify(tag)} is given twice`;
    seen.add(tag);
    if (tag.startsWith(PREF_TAG_PREFIX)) {
      if (prefOf(tag) === undefined) {
        return `${JSON.stringify(tag)} is no rank: write pref:${PREF_MIN} to pref:${PREF_MAX}, without leading zeros`;
      }
      prefs++;
      if (prefs > 1) return 'an MSP entry has at most one pref: tag';
    } else if (tag.startsWith(CONTEXT_TAG_PREFIX) && !isContext(tag)) {
      return `${JSON.stringify(tag)} is no context: a ctx: name is 1 to ${MAX_CONTEXT_NAME_OCTETS} of a-z, 0-9 and - (not first)`;
    }
  }
  return undefined;
}

/** One entry to rank, with where it came from. */
export interface RankInput {
  readonly entry: MspEntry;
  /** The recipient key of the entry's mapping, base64url. */
  readonly key: string;
  /** The mapping's `iat`. */
  readonly iat: number;
  /** The zone that served the mapping. */
  readonly zone: string;
  /** The entry's position in its mapping's `msps`, or in its sealed box. */
  readonly index: number;
  /** The audience key id (base64url) of the sealed box the entry came from. */
  readonly audience?: string;
}

/** An MSP a sender may use, in the recipient's order. */
export interface RankedMsp {
  readonly provider: string;
  readonly tags: readonly string[];
  readonly uri?: string;
  readonly contexts: readonly Context[];
  readonly pref?: number;
  readonly sameMsp: boolean;
  /** The recipient key of the mapping it came from, base64url. */
  readonly key: string;
  /** The zone that served that mapping. */
  readonly zone: string;
  /** For an entry of a sealed box: the audience key id, base64url. */
  readonly audience?: string;
}

/** Who asks: what {@link passesFilter} keeps. */
export interface MspFilter {
  /** Keep the entries for this context and those with none; absent: every entry. */
  readonly context?: string;
  /**
   * The sender's own MSP (a resolver's `msp` identity): a `same-msp` entry of another provider
   * is dropped. Absent: every `same-msp` entry is dropped, since nobody vouches for the sender's
   * MSP.
   */
  readonly msp?: string;
}

/** Whether a sender described by `filter` may use `entry`. */
export function passesFilter(entry: MspEntry, filter: MspFilter): boolean {
  const p = preferencesOf(entry.tags);
  if (p.sameMsp && (filter.msp === undefined || filter.msp !== entry.provider)) return false;
  if (filter.context === undefined || p.contexts.length === 0) return true;
  return p.contexts.includes(filter.context);
}

/** Orders two inputs: rank, then newer mapping, then key, then position; never 0 for distinct. */
function compareInputs(
  a: RankInput & { readonly pref: number },
  b: RankInput & { readonly pref: number },
): number {
  if (a.pref !== b.pref) return a.pref - b.pref;
  if (a.iat !== b.iat) return b.iat - a.iat;
  if (a.key !== b.key) return a.key < b.key ? -1 : 1;
  if (a.index !== b.index) return a.index - b.index;
  const aud = (x: RankInput): string => x.audience ?? '';
  if (aud(a) !== aud(b)) return aud(a) < aud(b) ? -1 : 1;
  if (a.zone !== b.zone) return a.zone < b.zone ? -1 : 1;
  return 0;
}

/**
 * Filters with {@link passesFilter}, then ranks: by `pref` ascending (unranked last), then the
 * newer mapping (`iat`) first, then the recipient key, then the entry's position; an entry with
 * the provider and uri of one ranked before it is dropped. The same inputs in any order give the
 * same list.
 */
export function rankMsps(inputs: readonly RankInput[], filter: MspFilter): RankedMsp[] {
  const kept = inputs
    .filter((input) => passesFilter(input.entry, filter))
    .map((input) => ({ ...input, prefs: preferencesOf(input.entry.tags) }))
    .map((input) => ({ ...input, pref: input.prefs.pref ?? PREF_MAX + 1 }));
  kept.sort(compareInputs);
  const seen = new Set<string>();
  const ranked: RankedMsp[] = [];
  for (const input of kept) {
    const id = `${input.entry.provider}\0${input.entry.uri ?? ''}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const { entry, prefs } = input;
    ranked.push({
      provider: entry.provider,
      tags: [...entry.tags],
      ...(entry.uri === undefined ? {} : { uri: entry.uri }),
      contexts: [...prefs.contexts],
      ...(prefs.pref === undefined ? {} : { pref: prefs.pref }),
      sameMsp: prefs.sameMsp,
      key: input.key,
      zone: input.zone,
      ...(input.audience === undefined ? {} : { audience: input.audience }),
    });
  }
  return ranked;
}

/**
 * The best rank among `entries` (unranked: {@link PREF_MAX} + 1), to order whole mappings the way
 * {@link rankMsps} orders their entries.
 */
export function bestPref(entries: readonly MspEntry[]): number {
  let best = PREF_MAX + 1;
  for (const entry of entries) best = Math.min(best, preferencesOf(entry.tags).pref ?? best);
  return best;
}
