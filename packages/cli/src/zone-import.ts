import {
  canonicalName,
  isSubdomain,
  nameToCsi,
  readZoneFileChunks,
  verifyMapping,
  type Csi,
  type ResourceRecord,
  type RRType,
  type ZoneFileEntry,
} from '@mimi-discovery/common';
import {
  MAX_CHANGES_PER_APPLY,
  MAX_RECORDS_PER_RRSET,
  RegistrationError,
  isAuthorizedKey,
  type DiscoveryStore,
  type RangeAuthkeyLookup,
  type OperationOutcome,
  type RRsetChange,
  type StoreOperation,
} from '@mimi-discovery/authoritative';
import { failure } from './errors.js';

/**
 * `zone import`: the records of an RFC 1035 master file taken into a zone of the store, read as
 * a stream so that a file of any size (the export of a zone of millions of mappings) is imported
 * in constant memory.
 *
 * What is taken is what a zone carries beyond what the store makes itself:
 * - delegations: NS and DS below the apex, A/AAAA glue and nameserver addresses, `_dns` SVCB;
 * - MAP records at phone names, each verified for the CSI its owner name spells, and MAPREF
 *   records;
 * - AUTHKEY records at the apex, added to those the zone has (its own prover key stays).
 * A delegation without DS, in the file or already in the zone, is refused (design §5: every
 * delegation is signed), as is a DS without NS, before anything is written. It skips, with a
 * count and the reason, what the store makes and signs itself (SOA, DNSKEY, RRSIG, NSEC, NSEC3,
 * NSEC3PARAM), the apex NS (set by `init`), and anything else.
 *
 * Delegation records are grouped into RRsets, each replacing the zone's RRset of that name and
 * type, and applied in batches of at most MAX_CHANGES_PER_APPLY RRsets with every RRset of one
 * owner in one batch (so NS and DS of a cut arrive together); each batch is atomic and durable.
 * Mappings, MAPREFs and AUTHKEYs are added, not replaced, as store operations decided inside
 * the store's write transaction (`mapping-ops.ts`), since a running server may be writing the
 * same RRsets at the same time: each MAP record is "add this mapping" under the registrar's
 * rules (seq, "new" bit, removals and revocations on record, expiry, limits; that its prover is
 * listed is the operator's to vouch for), each MAPREF RRset "add these targets", the AUTHKEY
 * RRset "add these keys" to the zone's own. What the store refuses is skipped with its reason.
 *
 * A Mapping does not carry its CSI (docs/protocol.md §4), and the store files removals and
 * revocations by CSI, so a MAP record is taken only where its owner name gives the CSI: a phone
 * name, whose digits are the number, and the mapping's signatures must cover that CSI (a
 * mapping copied to another name is skipped). An email name is a hash of the local part, which
 * gives no CSI back: a MAP there is skipped, to be published through the registration API (whose
 * request names the CSI). So is a MAP at a name that is no CSI's.
 *
 * An MSP-run DP's zone (config `mspZone`, given as `msp`) holds mappings of other ranges at their
 * MAPREF-target names (`maprefTargetName`): a MAP at a phone one is imported for the CSI its name
 * spells under the zone (`nameToCsi(owner, zone)`), verified for that CSI, and its attestation's
 * prover must be an AUTHKEY of the CSI's own range, looked up through the DP's resolver as the
 * registration API does (`range-authkeys.ts`): an export of the MSP zone imports back whole.
 * A mapping whose prover is not listed there is skipped with that reason; one whose prover cannot
 * be checked (the resolver down) is skipped too, counted apart, and importing the file again
 * later takes it.
 *
 * Streaming, and what a failure leaves. The file is read twice, a piece at a time
 * (`readZoneFileChunks`), holding one owner's records at most:
 * 1. A check that writes nothing: every line must read; the records of one owner name must be
 *    together (consecutive lines, as every zone file written by a server or `zone export` has
 *    them), since an owner's delegation RRsets are replaced as a whole; no RRset may hold more
 *    than MAX_RECORDS_PER_RRSET records; every delegation must have its DS, and every DS its
 *    NS, in the file or the zone. A file that fails any of these changes nothing stored, and
 *    the error names the line.
 * 2. The writes, in the order of the file: batches of delegation RRsets (each atomic and
 *    durable) and operations (each atomic and durable, {@link IMPORT_OPERATIONS_IN_FLIGHT} at
 *    a time). A millions-of-records import is not one transaction: should this pass fail (the
 *    disk, the store refusing a write, the process killed), what was written before stays, in
 *    whole batches and operations, and the rest is not. Importing the same file again finishes
 *    it: delegation RRsets are replaced with the same records, and mappings already stored are
 *    refused as stale (`stale-seq`) and counted as skipped.
 * Memory: one owner's records, a batch of delegation RRsets, the operations in flight, and the
 * names of the delegation owners already seen (one name per delegation, to refuse an owner
 * whose records are not together) — nothing that grows with the mappings.
 *
 * RRsets are counted as the report counts them: the records of one type in one owner's
 * consecutive lines are one RRset.
 */

/** Store operations of one import in flight at a time (the store groups them into commits). */
export const IMPORT_OPERATIONS_IN_FLIGHT = 256;

/** Records left out of an import, by type and reason. */
export interface SkippedJson {
  type: string;
  count: number;
  reason: string;
}

/** What `zone import` did. */
export interface ImportReport {
  zone: string;
  rrsets: number;
  records: number;
  serial: number | undefined;
  skipped: SkippedJson[];
}

/**
 * The master file an import reads: each call gives its text from the start, in pieces (the file
 * is read once per pass).
 */
export type ImportSource = (pass: ImportPass) => AsyncIterable<string>;

/** The passes of an import (see the module comment). */
export type ImportPass = 'check' | 'write';

/** What an import needs besides its store and source. */
export interface ImportOptions {
  /** The zone imported into (canonical). */
  readonly origin: string;
  /** The namespace's apex (CSI names are below it). */
  readonly apex: string;
  /** The time mappings are checked at (seconds). */
  readonly now: number;
  /** Told of each record read, with its line. */
  readonly onRecords?: (pass: ImportPass, records: number) => void;
  /**
   * The DP's MSP zone (config `mspZone.zone`) and the lookup of other ranges' AUTHKEYs through
   * its resolver; an import into that zone takes MAP records at phone MAPREF-target names.
   */
  readonly msp?: { readonly zone: string; readonly authkeys: RangeAuthkeyLookup };
}

/**
 * Imports the master file of `source` into the zone `options.origin` of `store` (see the module
 * comment). Throws `ZoneFileError` for a file that does not read, and `CliError` for one that
 * breaks the rules of the check, before anything is written.
 */
export async function importZoneFile(
  store: DiscoveryStore,
  source: ImportSource,
  options: ImportOptions,
): Promise<ImportReport> {
  await readGroups(source('check'), options, 'check', (group) => checkGroup(store, group, options));
  const writer = new ImportWriter(store, options);
  await readGroups(
    source('write'),
    options,
    'write',
    (group) => writer.group(group),
    (event) => writer.record(event),
  );
  return writer.finish();
}

/** What the store makes and signs itself: never imported. */
const STORE_OWN: ReadonlySet<string> = new Set([
  'SOA',
  'DNSKEY',
  'RRSIG',
  'NSEC',
  'NSEC3',
  'NSEC3PARAM',
]);

/** How a record is taken: replacing its RRset (a delegation's), or through an operation. */
type Take = 'put' | 'map' | 'mapref' | 'authkey';

/** How `rr` is taken, or why not (MAP records not checked against their name yet). */
function takeOf(rr: ResourceRecord, origin: string): { take: Take } | { skip: string } {
  const owner = canonicalName(rr.name);
  if (STORE_OWN.has(rr.type)) return { skip: 'the store makes and signs these itself' };
  if (rr.class !== 'IN') return { skip: 'not class IN' };
  if (!isSubdomain(owner, origin)) return { skip: `outside zone ${origin}` };
  const atApex = owner === origin;
  const other = { skip: 'not a delegation, address, mapping or key' };
  switch (rr.type) {
    case 'NS':
      return atApex ? { skip: 'the apex NS is set by init' } : { take: 'put' };
    case 'DS':
    case 'A':
    case 'AAAA':
      return atApex ? other : { take: 'put' };
    case 'MAPREF':
      return atApex ? other : { take: 'mapref' };
    case 'SVCB':
      return owner.startsWith('_dns.')
        ? { take: 'put' }
        : { skip: 'SVCB is imported only at _dns.<nameserver>' };
    case 'AUTHKEY':
      return atApex ? { take: 'authkey' } : { skip: 'AUTHKEY belongs at the apex' };
    case 'MAP':
      return { take: 'map' };
    default:
      return other;
  }
}

/**
 * The CSI a MAP record at `owner` is imported for, or why it is not: a mapping signed for the
 * phone CSI of its owner name — a name under the apex, or, in the MSP zone `mspZone`, a
 * MAPREF-target name (`foreign`: its prover is then checked against the CSI's own range; see the
 * module comment). Its times are left to the store, which refuses an expired mapping as it
 * refuses one sent to the registration API.
 */
function mappingCsi(
  data: Uint8Array,
  owner: string,
  apex: string,
  now: number,
  mspZone: string | undefined,
): { csi: Csi; foreign: boolean; prover: Uint8Array | undefined } | { problem: string } {
  const own = nameToCsi(owner, apex);
  const csi = own ?? (mspZone === undefined ? undefined : nameToCsi(owner, mspZone));
  if (csi === undefined) {
    const email = [apex, ...(mspZone === undefined ? [] : [mspZone])].some((base) =>
      isSubdomain(owner, `email.${canonicalName(base)}`),
    );
    return {
      problem: email
        ? 'MAP at an email name, which gives no CSI to verify it for (publish it through the registration API)'
        : 'MAP at a name that is no CSI name',
    };
  }
  const foreign = own === undefined;
  const verified = verifyMapping(data, { csi, now });
  if (verified.kind === 'verified') return { csi, foreign, prover: verified.value.att.prover };
  switch (verified.reason) {
    case 'expired':
    case 'not-yet-valid':
      // The store refuses it as expired; a prover that cannot be read is not asked about.
      return { csi, foreign, prover: undefined };
    case 'malformed':
      return { problem: 'MAP RDATA that is not a mapping' };
    case 'unsupported-version':
      return { problem: 'MAP of an unsupported version (version 1 spelled the CSI)' };
    default:
      return { problem: `MAP not signed for the CSI of its name (${verified.reason})` };
  }
}

/**
 * The records of one owner name on consecutive lines, as taken: the RRsets replaced (by type),
 * MAPREF and AUTHKEY records (each bounded by MAX_RECORDS_PER_RRSET), and every record with
 * its line and how it is taken (MAP records, which become one operation each, and the skipped
 * ones, are not held: they are handed over as they come).
 */
interface OwnerGroup {
  readonly owner: string;
  /** Line of the group's first record. */
  readonly line: number;
  readonly puts: Map<RRType, ResourceRecord[]>;
  readonly maprefs: ResourceRecord[];
  readonly authkeys: ResourceRecord[];
}

/** One record read: what {@link readGroups} hands over besides whole groups. */
type RecordEvent =
  | { kind: 'map'; entry: ZoneFileEntry; group: OwnerGroup }
  | { kind: 'skip'; entry: ZoneFileEntry; reason: string };

/**
 * Reads the file of `chunks` into owner groups, calling `onGroup` with each once its owner's
 * lines end, and `onRecord` (when given) with each MAP or skipped record as it comes. Checks
 * what holds memory: an RRset over MAX_RECORDS_PER_RRSET, and the records of a delegation owner
 * coming back after other owners'.
 */
async function readGroups(
  chunks: AsyncIterable<string>,
  options: ImportOptions,
  pass: ImportPass,
  onGroup: (group: OwnerGroup) => Promise<void> | void,
  onRecord?: (event: RecordEvent) => Promise<void> | void,
): Promise<void> {
  const { origin } = options;
  let group: OwnerGroup | undefined;
  /** Owners whose group held delegation RRsets, to refuse one that comes back. */
  const delegations = new Set<string>();
  const close = async (): Promise<void> => {
    if (group === undefined) return;
    if (group.puts.size > 0) delegations.add(group.owner);
    const done = group;
    group = undefined;
    await onGroup(done);
  };
  for await (const batch of readZoneFileChunks(chunks, { origin, defaultTtl: 3600 })) {
    options.onRecords?.(pass, batch.length);
    for (const entry of batch) {
      const rr = entry.record;
      const owner = canonicalName(rr.name);
      if (group?.owner !== owner) {
        await close();
        group = { owner, line: entry.line, puts: new Map(), maprefs: [], authkeys: [] };
      }
      const how = takeOf(rr, origin);
      if ('skip' in how) {
        await onRecord?.({ kind: 'skip', entry, reason: how.skip });
        continue;
      }
      const name = owner;
      let held: ResourceRecord[] | undefined;
      switch (how.take) {
        case 'map':
          await onRecord?.({ kind: 'map', entry, group });
          continue;
        case 'mapref':
          held = group.maprefs;
          break;
        case 'authkey':
          held = group.authkeys;
          break;
        case 'put': {
          if (group.puts.size === 0 && delegations.has(owner)) {
            throw failure(
              'ERR_CLI_IMPORT_ORDER',
              `line ${entry.line}: the records of ${owner} are not on consecutive lines: ` +
                'an import reads the file as a stream and replaces each delegation RRset whole, ' +
                'so it needs every record of one owner together',
            );
          }
          held = group.puts.get(rr.type);
          if (held === undefined) {
            held = [];
            group.puts.set(rr.type, held);
          }
          break;
        }
      }
      if (held.length >= MAX_RECORDS_PER_RRSET) {
        throw failure(
          'ERR_CLI_IMPORT_RRSET',
          `line ${entry.line}: more than ${MAX_RECORDS_PER_RRSET} ${rr.type} records at ${owner}, ` +
            'over the most one RRset may hold',
        );
      }
      held.push({ ...rr, name });
    }
  }
  await close();
}

/**
 * The check of one owner's delegation RRsets against the zone (design §5 and RFC 4035 §2.4):
 * NS needs DS, and DS needs NS, in the group or in the zone already.
 */
function checkGroup(store: DiscoveryStore, group: OwnerGroup, options: ImportOptions): void {
  const has = (type: RRType): boolean =>
    group.puts.has(type) || store.readRRset(options.origin, group.owner, type).length > 0;
  if (group.puts.has('NS') && !has('DS')) {
    throw failure(
      'ERR_DELEGATION_NO_DS',
      `line ${group.line}: the delegation of ${group.owner} has no DS in the file or the zone: ` +
        'every delegation is signed (design §5)',
    );
  }
  if (group.puts.has('DS') && !has('NS')) {
    throw failure(
      'ERR_STORE_BAD_CHANGE',
      `line ${group.line}: DS at ${group.owner} has no NS in the file or the zone: ` +
        'a DS belongs only at a delegation (RFC 4035 §2.4)',
    );
  }
}

/** An RRset of the file as the report counts it, and whether anything of it was taken. */
interface Counted {
  readonly type: string;
  taken: boolean;
}

/** An operation waiting in the window, with what it stands for. */
interface PendingOperation {
  readonly operation: StoreOperation;
  readonly rrset: Counted;
  readonly records: number;
  /** Asked first, in the window: why the operation is not applied, or undefined. */
  readonly precheck?: () => Promise<string | undefined>;
}

/** Why a mapping of a foreign CSI whose prover could not be checked was skipped. */
const PROVER_UNVERIFIABLE =
  'its prover could not be checked through the resolver (ERR_PROVER_UNVERIFIABLE); import the file again once it answers';

/** The write pass: batches of RRset changes and a window of operations (module comment). */
class ImportWriter {
  readonly #store: DiscoveryStore;
  readonly #options: ImportOptions;
  readonly #skipped = new Map<string, SkippedJson>();
  #batch: RRsetChange[] = [];
  #window: PendingOperation[] = [];
  #serial: number | undefined;
  #rrsets = 0;
  #records = 0;
  /** The MAP RRset of the group being read, counted once whatever its records become. */
  #maps: { group: OwnerGroup; rrset: Counted } | undefined;

  constructor(store: DiscoveryStore, options: ImportOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Handles one MAP or skipped record as it is read. */
  async record(event: RecordEvent): Promise<void> {
    if (event.kind === 'skip') {
      this.#skip(event.entry.record.type, event.reason);
      return;
    }
    const { record } = event.entry;
    // readGroups hands over MAP records only.
    if (record.type !== 'MAP') return;
    const owner = event.group.owner;
    const { apex, now, origin, msp } = this.#options;
    const mspZone =
      msp !== undefined && canonicalName(msp.zone) === origin ? canonicalName(msp.zone) : undefined;
    const taken = mappingCsi(record.data, owner, apex, now, mspZone);
    if ('problem' in taken) {
      this.#skip('MAP', taken.problem);
      return;
    }
    if (this.#maps?.group !== event.group) {
      this.#maps = { group: event.group, rrset: { type: 'MAP', taken: false } };
    }
    const { csi, prover } = taken;
    await this.#operate({
      operation: {
        kind: 'publish-mapping',
        name: owner,
        csi,
        mapping: record.data,
        now,
        authorize: false,
      },
      rrset: this.#maps.rrset,
      records: 1,
      // A foreign CSI's prover, as the registration API checks it (registration.ts).
      ...(taken.foreign && msp !== undefined && prover !== undefined
        ? { precheck: () => this.#foreignProver(msp.authkeys, csi, prover) }
        : {}),
    });
  }

  /** Why the prover of a foreign CSI's mapping is not taken, or undefined when it is listed. */
  async #foreignProver(
    authkeys: RangeAuthkeyLookup,
    csi: Csi,
    prover: Uint8Array,
  ): Promise<string | undefined> {
    try {
      const { zone, authkeys: keys } = await authkeys.lookup(csi);
      return isAuthorizedKey(keys, 'prover', prover, this.#options.now)
        ? undefined
        : `attested by a prover that is no AUTHKEY of ${zone}, the CSI's range`;
    } catch (error) {
      if (error instanceof RegistrationError && error.code === 'ERR_PROVER_UNVERIFIABLE') {
        return PROVER_UNVERIFIABLE;
      }
      throw error;
    }
  }

  /** Handles one owner group once its lines have ended. */
  async group(group: OwnerGroup): Promise<void> {
    const changes: RRsetChange[] = [...group.puts].map(([type, records]) => ({
      op: 'put',
      name: group.owner,
      type,
      records,
    }));
    if (changes.length > 0) {
      if (this.#batch.length + changes.length > MAX_CHANGES_PER_APPLY) await this.#flush();
      this.#batch.push(...changes);
      this.#rrsets += changes.length;
      for (const records of group.puts.values()) this.#records += records.length;
    }
    if (group.maprefs.length > 0) {
      await this.#operate({
        operation: {
          kind: 'add-maprefs',
          name: group.owner,
          targets: group.maprefs.flatMap((rr) => (rr.type === 'MAPREF' ? [rr.data] : [])),
          ttl: Math.min(...group.maprefs.map((rr) => rr.ttl)),
        },
        rrset: { type: 'MAPREF', taken: false },
        records: group.maprefs.length,
      });
    }
    if (group.authkeys.length > 0) {
      await this.#operate({
        operation: {
          kind: 'add-authkeys',
          keys: group.authkeys.flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr.data] : [])),
        },
        rrset: { type: 'AUTHKEY', taken: false },
        records: group.authkeys.length,
      });
    }
  }

  /** Writes what is still queued; the report. */
  async finish(): Promise<ImportReport> {
    await this.#flush();
    await this.#settleWindow();
    return {
      zone: this.#options.origin,
      rrsets: this.#rrsets,
      records: this.#records,
      serial: this.#serial,
      skipped: [...this.#skipped.values()],
    };
  }

  #skip(type: string, reason: string): void {
    const key = `${type}\u0000${reason}`;
    const entry = this.#skipped.get(key) ?? { type, count: 0, reason };
    entry.count += 1;
    this.#skipped.set(key, entry);
  }

  async #flush(): Promise<void> {
    if (this.#batch.length === 0) return;
    const batch = this.#batch;
    this.#batch = [];
    this.#serial = Math.max(
      this.#serial ?? 0,
      (await this.#store.apply(this.#options.origin, batch)).serial,
    );
  }

  async #operate(pending: PendingOperation): Promise<void> {
    this.#window.push(pending);
    if (this.#window.length >= IMPORT_OPERATIONS_IN_FLIGHT) await this.#settleWindow();
  }

  /** Runs the operations of the window together and counts their outcomes. */
  async #settleWindow(): Promise<void> {
    const window = this.#window;
    this.#window = [];
    const outcomes = await Promise.all(
      window.map(async (entry): Promise<OperationOutcome | { kind: 'skipped'; reason: string }> => {
        const problem = await entry.precheck?.();
        if (problem !== undefined) return { kind: 'skipped', reason: problem };
        return this.#store.applyOperation(this.#options.origin, entry.operation);
      }),
    );
    outcomes.forEach((outcome, i) => this.#settle(outcome, window[i] as PendingOperation));
  }

  #settle(
    outcome: OperationOutcome | { kind: 'skipped'; reason: string },
    entry: PendingOperation,
  ): void {
    if (outcome.kind === 'skipped') {
      this.#skip(entry.rrset.type, outcome.reason);
      return;
    }
    if (outcome.kind === 'refused') {
      this.#skip(entry.rrset.type, `refused by the store: ${outcome.reason}`);
      return;
    }
    this.#serial = Math.max(this.#serial ?? 0, outcome.serial);
    if (!entry.rrset.taken) {
      entry.rrset.taken = true;
      this.#rrsets += 1;
    }
    this.#records += entry.records;
  }
}
