import {
  canonicalName,
  createZoneDigester,
  formatRecord,
  formatZone,
  signRRset,
  signZone,
  systemClock,
  zonemdAlgorithms,
  zonemdRRset,
  type RecordOf,
  type ResourceRecord,
  type ZoneDigester,
} from '@mimi-discovery/common';
import { ONLINE_SIGNATURE_VALIDITY_SECONDS } from '../answering/answer.js';
import { currentMappings, mappingExpiry } from '../answering/map-expiry.js';
import type { DiscoveryStore } from '../store/store.js';
import { noZoneError } from '../store/store-error.js';
import { zoneOrigin } from './owner-name.js';
import { DEFAULT_SIGNATURE_VALIDITY, validityAt } from './zone-signer.js';

/**
 * A zone of the store as an RFC 1035 master file, for stock secondaries (NSD, Knot, BIND) and
 * for inspection (design §5, §9), in one of three forms ({@link ExportForm}):
 *
 * - `stored-chain` — with `nsec3`, for a zone that keeps its NSEC3 chain (`ZoneInfo.nsec3`, set
 *   with `setNsec3`): the records exactly as stored, chain and RRSIGs included, at the zone's
 *   serial. A secondary loaded from the file holds the zone at that serial, so the journal's
 *   IXFR continues from it; expired mappings leave the store through its re-signing pass
 *   (`resign`), as journaled writes, not through the export.
 * - `signed-in-memory` — with `nsec3`, for a zone without a chain: signed afresh the way
 *   `ldns-signzone` would sign it: the store's records without their RRSIGs go through
 *   `signZone` with the zone's key, which adds a standard NSEC3 chain (RFC 9276 parameters) and
 *   NSEC3PARAM. The chain is built over every name at once, so this form holds the whole zone
 *   in memory: fine for thousands of CSIs, not for millions (keep a chain instead).
 * - `as-served` — without `nsec3`: the records as the store serves them, RRSIGs included, no
 *   denial chain (a stored one is left out with its RRSIGs): a view for people and a backup,
 *   not something a secondary can serve.
 *
 * Hashes of phone numbers are cheap to reverse: a file with a chain makes the zone enumerable
 * to whoever can query the servers that load it, so export it only to your own.
 *
 * The signed-in-memory and as-served forms are the zone as a DP answers from it at `now` (R9):
 * a mapping that has expired (min(`exp`, `att.exp`) ≤ now, see `map-expiry.ts`) is left out,
 * even when no write has rewritten its RRset yet. As served, a MAP RRset that lost records gets
 * a fresh RRSIG with the export's validity, and one that lost them all is left out with its
 * RRSIG, so what is exported still verifies. A file keeps its TTLs and mappings as of `now`:
 * export again to follow expiries (each mapping still carries its own `exp`, which every
 * resolver checks).
 *
 * Streaming ({@link exportZoneText}): the stored-chain and as-served forms read the zone through
 * `streamZone`, node by node, and write each batch as it comes, so memory holds a batch, however
 * large the zone. A zone that carries a ZONEMD (RFC 8976) is digested on the way in one pass
 * (`createZoneDigester`), and when the as-served form left anything out, the apex ZONEMD RRset
 * is computed afresh over what was written and signed: since the digest is known only once
 * every record has passed, that RRset and its RRSIG are written last in the file, after the
 * last node (a master file's order is free, RFC 1035 §5; loaders and ZONEMD checkers order the
 * zone themselves). Everything else comes in canonical order (RFC 4034 §6.1), SOA first, each
 * RRset followed by its RRSIG. {@link exportZone} gives the same records as one string, in
 * canonical order throughout (`formatZone`).
 *
 * Worked example: a zone with SOA, NS, DNSKEY, AUTHKEY and one MAP exports with `nsec3` (no
 * stored chain) as those records, an RRSIG over each RRset, three NSEC3 records (apex, the MAP
 * owner and each empty non-terminal above it) with their RRSIGs, and the NSEC3PARAM; once that
 * mapping has expired, as SOA, NS, DNSKEY and AUTHKEY with their RRSIGs, one NSEC3 (the apex)
 * and the NSEC3PARAM.
 */

/** Options of {@link exportZone} and {@link exportZoneText}. */
export interface ExportZoneOptions {
  /** With an NSEC3 chain for stock secondaries: as stored, or signed afresh (see the forms). */
  nsec3: boolean;
  /**
   * Signing time, and the time at which mappings are checked for expiry, in seconds since the
   * epoch; default the time of `systemClock`.
   */
  now?: number;
  /** Lifetime of the export's signatures; default 14 days. */
  validitySeconds?: number;
}

/** How a zone is exported (see the module comment). */
export type ExportForm = 'stored-chain' | 'signed-in-memory' | 'as-served';

/**
 * Characters after which {@link exportZoneText} yields the text it has: a piece is whole lines,
 * at most this and one line more.
 */
export const EXPORT_CHUNK_CHARS = 256 * 1024;

/**
 * The form in which {@link exportZoneText} exports the zone `origin`. Throws `StoreError`
 * (`ERR_STORE_NO_ZONE`) when the store holds no such zone.
 */
export function exportForm(store: DiscoveryStore, origin: string, nsec3: boolean): ExportForm {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const info = store.zoneInfo(apex);
  if (info === undefined) throw noZoneError(apex);
  if (!nsec3) return 'as-served';
  return info.nsec3 ? 'stored-chain' : 'signed-in-memory';
}

/**
 * The zone `origin` of `store` as a master file (absolute names, SOA first, canonical order),
 * as one string: for small zones and tests; {@link exportZoneText} streams. Throws `StoreError`
 * (`ERR_STORE_NO_ZONE`) when the store holds no such zone.
 */
export function exportZone(
  store: DiscoveryStore,
  origin: string,
  options: ExportZoneOptions,
): string {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const plan = exportPlan(store, apex, options);
  const records = store.readZone(apex);
  if (plan.form === 'signed-in-memory') return formatZone(apex, plan.sign(records));
  return formatZone(apex, [...plan.nodes.push(records), ...plan.nodes.end()]);
}

/**
 * The zone `origin` of `store` as a master file, in pieces of about {@link EXPORT_CHUNK_CHARS}
 * characters (whole lines), read from the store as they are written
 * (see the module comment for the order, and for the signed-in-memory form, which holds the
 * zone). The zone is read from one snapshot: a write during the export is not in it. Throws
 * `StoreError` (`ERR_STORE_NO_ZONE`) when the store holds no such zone, at the first piece.
 */
export async function* exportZoneText(
  store: DiscoveryStore,
  origin: string,
  options: ExportZoneOptions,
): AsyncGenerator<string> {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const plan = exportPlan(store, apex, options);
  const source: AsyncIterable<readonly ResourceRecord[]> | Iterable<readonly ResourceRecord[]> =
    plan.form === 'signed-in-memory' ? [plan.sign(store.readZone(apex))] : store.streamZone(apex);
  let text = '';
  for await (const batch of source) {
    for (const rr of plan.nodes.push(batch)) {
      text += `${formatRecord(rr)}\n`;
      if (text.length >= EXPORT_CHUNK_CHARS) {
        yield text;
        text = '';
      }
    }
  }
  for (const rr of plan.nodes.end()) text += `${formatRecord(rr)}\n`;
  if (text !== '') yield text;
}

/**
 * The records of zone `origin` as the DP answers from it at `now` (R9), for a transfer: what
 * the store holds, RRSIGs and any stored chain included, in canonical order, without the MAP
 * records whose mapping has expired (a MAP RRset that lost some is signed anew, as the answerer
 * signs it), SOA first. A zone that carries a ZONEMD gets it computed again when anything was
 * left out, so the transferred zone still verifies as a whole (RFC 8976); it then comes last.
 * Throws `StoreError` (`ERR_STORE_NO_ZONE`) when the store holds no such zone.
 */
export function zoneRecordsAt(
  store: DiscoveryStore,
  origin: string,
  now: number,
): ResourceRecord[] {
  const apex = zoneOrigin(origin, 'ERR_STORE_NO_ZONE');
  const stored = store.readZone(apex);
  const key = store.zoneKey(apex);
  const validity = validityAt(now, {
    validitySeconds: ONLINE_SIGNATURE_VALIDITY_SECONDS,
    refreshBeforeSeconds: 0,
  });
  const nodes = new NodeFilter(apex, {
    expiredAt: now,
    resign: key === undefined ? undefined : (rrset) => signRRset(rrset, key, validity),
    dropChain: false,
  });
  return [...nodes.push(stored), ...nodes.end()];
}

/** How one export runs: its form, its node filter, and for `signed-in-memory` the signing. */
type ExportPlan =
  | { form: 'stored-chain' | 'as-served'; nodes: NodeFilter }
  | {
      form: 'signed-in-memory';
      nodes: NodeFilter;
      sign(records: readonly ResourceRecord[]): ResourceRecord[];
    };

function exportPlan(store: DiscoveryStore, apex: string, options: ExportZoneOptions): ExportPlan {
  const form = exportForm(store, apex, options.nsec3);
  const key = store.zoneKey(apex);
  const now = options.now ?? systemClock();
  const validity = validityAt(now, {
    validitySeconds: options.validitySeconds ?? DEFAULT_SIGNATURE_VALIDITY.validitySeconds,
    refreshBeforeSeconds: 0,
  });
  switch (form) {
    case 'stored-chain':
      return { form, nodes: new NodeFilter(apex, {}) };
    case 'as-served':
      return {
        form,
        nodes: new NodeFilter(apex, {
          expiredAt: now,
          resign: key === undefined ? undefined : (rrset) => signRRset(rrset, key, validity),
          dropChain: true,
        }),
      };
    case 'signed-in-memory': {
      if (key === undefined) throw noZoneError(apex);
      // Expired mappings go before signing: the chain then has no name that lost them all.
      const unsigned = new NodeFilter(apex, { expiredAt: now });
      return {
        form,
        nodes: new NodeFilter(apex, {}),
        sign: (records) =>
          signZone(
            apex,
            [...unsigned.push(records), ...unsigned.end()].filter((rr) => rr.type !== 'RRSIG'),
            key,
            { ...validity, nsec3: true },
          ),
      };
    }
  }
}

/** What a {@link NodeFilter} changes in the nodes it passes on. */
interface NodeRules {
  /** Leave out the MAP records whose mapping has expired at this time (seconds). */
  readonly expiredAt?: number;
  /**
   * Signs a MAP RRset that lost records, in place of its RRSIG, and a ZONEMD computed afresh;
   * without it such an RRset loses its RRSIG and the ZONEMD stays as stored.
   */
  readonly resign?: ((rrset: readonly ResourceRecord[]) => RecordOf<'RRSIG'>) | undefined;
  /** Leave out NSEC3 and NSEC3PARAM records and their RRSIGs. */
  readonly dropChain?: boolean;
}

/** NSEC3 chain types a `dropChain` export leaves out. */
const CHAIN_TYPES: ReadonlySet<string> = new Set(['NSEC3', 'NSEC3PARAM']);

/**
 * Passes a zone's records on node by node (all the records of one owner name, which a store
 * gives in canonical order, each RRset followed by its RRSIG), applying {@link NodeRules}: the
 * records of the last owner of a batch are held until the next owner starts, since a batch may
 * end inside a node. At the apex, the SOA goes first. When the rules may change records and the
 * zone carries a ZONEMD, the apex ZONEMD RRset is held back, every record passed on is digested
 * (one pass), and {@link NodeFilter.end} gives the ZONEMD RRset last: as stored when nothing
 * changed, else computed afresh and signed.
 *
 * Worked example, `expiredAt` 1000, zone without ZONEMD: `push([soa, ns, nsSig, mapA, mapB,
 * mapSig])` (mapA expired) gives `[soa, ns, nsSig]` and holds the MAP node; `end()` gives
 * `[mapB, resign([mapB])]`.
 */
class NodeFilter {
  readonly #apex: string;
  readonly #rules: NodeRules;
  #owner: string | undefined;
  #held: ResourceRecord[] = [];
  /** Whether anything was left out or signed anew so far. */
  #changed = false;
  /** The apex ZONEMD RRset and its RRSIGs, as stored, when held back to be written last. */
  #zonemd:
    { records: RecordOf<'ZONEMD'>[]; signatures: ResourceRecord[]; serial: number } | undefined;
  #digesters: Map<number, ZoneDigester> | undefined;

  constructor(apex: string, rules: NodeRules) {
    this.#apex = apex;
    this.#rules = rules;
  }

  /** Takes the next records of the zone; returns those of every node they complete. */
  push(records: readonly ResourceRecord[]): ResourceRecord[] {
    const out: ResourceRecord[] = [];
    for (const rr of records) {
      const owner = canonicalName(rr.name);
      if (owner !== this.#owner) {
        this.#flush(out);
        this.#owner = owner;
      }
      this.#held.push(rr);
    }
    return out;
  }

  /** The end of the zone: the records of the last node, then a held-back ZONEMD RRset. */
  end(): ResourceRecord[] {
    const out: ResourceRecord[] = [];
    this.#flush(out);
    const zonemd = this.#zonemd;
    if (zonemd === undefined) return out;
    const resign = this.#rules.resign;
    if (!this.#changed || resign === undefined) {
      out.push(...zonemd.records, ...zonemd.signatures);
      return out;
    }
    // One digest per algorithm that zonemdRRset asks for: #holdZonemd started exactly those.
    const digests = new Map(
      [...(this.#digesters ?? [])].map(([algorithm, digester]) => [algorithm, digester.digest()]),
    );
    const fresh = zonemdRRset(
      this.#apex,
      zonemd.records,
      zonemd.serial,
      (algorithm) => digests.get(algorithm) as Uint8Array,
    );
    out.push(...fresh, resign(fresh));
    return out;
  }

  #flush(out: ResourceRecord[]): void {
    if (this.#held.length === 0) return;
    let node = this.#held;
    this.#held = [];
    const atApex = this.#owner === this.#apex;
    if (this.#rules.dropChain === true) node = this.#withoutChain(node);
    if (this.#rules.expiredAt !== undefined)
      node = this.#withoutExpired(node, this.#rules.expiredAt);
    if (atApex) {
      if (this.#mayChange()) node = this.#holdZonemd(node);
      const soa = node.findIndex((rr) => rr.type === 'SOA');
      if (soa > 0) node = [node[soa] as ResourceRecord, ...node.filter((_, i) => i !== soa)];
    }
    for (const digester of this.#digesters?.values() ?? []) digester.update(node);
    out.push(...node);
  }

  /**
   * Whether the rules can leave out or re-sign anything, with a signer to sign a fresh ZONEMD
   * (without one, a ZONEMD stays as stored and in place).
   */
  #mayChange(): boolean {
    return (
      this.#rules.resign !== undefined &&
      (this.#rules.dropChain === true || this.#rules.expiredAt !== undefined)
    );
  }

  #withoutChain(node: ResourceRecord[]): ResourceRecord[] {
    const kept = node.filter(
      (rr) =>
        !CHAIN_TYPES.has(rr.type) && !(rr.type === 'RRSIG' && CHAIN_TYPES.has(rr.data.typeCovered)),
    );
    if (kept.length !== node.length) this.#changed = true;
    return kept;
  }

  /**
   * The node without the MAP records expired at `now`; the RRSIG of a MAP RRset that lost
   * records is replaced by one over what is left (in the same place), or dropped with the
   * RRset when nothing is left or there is no `resign`.
   */
  #withoutExpired(node: ResourceRecord[], now: number): ResourceRecord[] {
    const maps = node.filter((rr) => rr.type === 'MAP');
    if (maps.length === 0) return node;
    const current = currentMappings(maps, now, mappingExpiry);
    if (current.removed === 0) return node;
    this.#changed = true;
    const kept = new Set(current.records);
    const resign = this.#rules.resign;
    const fresh =
      current.records.length > 0 && resign !== undefined ? resign(current.records) : undefined;
    const out: ResourceRecord[] = [];
    for (const rr of node) {
      if (rr.type === 'MAP' && !kept.has(rr)) continue;
      if (rr.type === 'RRSIG' && rr.data.typeCovered === 'MAP') {
        if (fresh !== undefined) out.push(fresh);
        continue;
      }
      out.push(rr);
    }
    return out;
  }

  /**
   * Takes the apex ZONEMD RRset and its RRSIGs out of the apex node, to be written last, and
   * starts a digest of each algorithm it will be computed with.
   */
  #holdZonemd(node: ResourceRecord[]): ResourceRecord[] {
    const records = node.filter((rr): rr is RecordOf<'ZONEMD'> => rr.type === 'ZONEMD');
    const soa = node.find((rr): rr is RecordOf<'SOA'> => rr.type === 'SOA');
    if (records.length === 0 || soa === undefined) return node;
    const signatures = node.filter((rr) => rr.type === 'RRSIG' && rr.data.typeCovered === 'ZONEMD');
    this.#zonemd = { records, signatures, serial: soa.data.serial };
    this.#digesters = new Map(
      zonemdAlgorithms(records).map((algorithm) => [
        algorithm,
        createZoneDigester(this.#apex, algorithm),
      ]),
    );
    return node.filter(
      (rr) => !records.includes(rr as RecordOf<'ZONEMD'>) && !signatures.includes(rr),
    );
  }
}
