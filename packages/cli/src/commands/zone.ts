import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  canonicalName,
  isSubdomain,
  nameToCsi,
  parseZoneFile,
  verifyMapping,
  type ResourceRecord,
  type RRType,
} from '@mimi-discovery/common';
import {
  exportZone,
  MAX_CHANGES_PER_APPLY,
  type DiscoveryStore,
  type OperationOutcome,
  type RRsetChange,
  type StoreOperation,
} from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { loadConfig, selectZones, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure } from '../errors.js';
import { writeReplacing } from '../files.js';
import { zoneOf } from '../flag-values.js';

/**
 * `zone export` and `zone import`: a zone of the store as an RFC 1035 master file, and the
 * records of such a file taken back into a zone.
 *
 * Export signs the zone afresh with a full NSEC3 chain (`exportZone` with `nsec3`), the form
 * stock secondaries (NSD, Knot, BIND) can serve; `--no-nsec3` writes the records exactly as
 * served instead (RRSIGs included, no chain), a backup rather than something to serve. NSEC3
 * hashes of phone numbers are cheap to reverse: export only to your own secondaries.
 *
 * Import takes what a zone carries beyond what the store makes itself:
 * - delegations: NS and DS below the apex, A/AAAA glue and nameserver addresses, `_dns` SVCB;
 * - MAP records at phone names, each verified for the CSI its owner name spells, and MAPREF
 *   records;
 * - AUTHKEY records at the apex, added to those the zone has (its own prover key stays).
 * A delegation without DS, in the file or already in the zone, is refused (design §5: every
 * delegation is signed) before anything is written. It skips, with a count and the reason, what
 * the store makes and signs itself (SOA, DNSKEY, RRSIG, NSEC, NSEC3, NSEC3PARAM), the apex NS
 * (set by `init`), and anything else.
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
 * request names the CSI). So is a MAP at a name that is no CSI's (a MAPREF target in an MSP's
 * zone).
 */

interface ExportFlags {
  config?: string;
  zone: string;
  out?: string;
  nsec3: boolean;
}

/** Store operations of one import in flight at a time (the store groups them into commits). */
export const IMPORT_OPERATIONS_IN_FLIGHT = 256;

interface ImportFlags {
  config?: string;
  zone: string;
  file: string;
  json?: boolean;
}

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

/** Adds `zone export` and `zone import` to `program`. */
export function registerZone(program: Command, env: CommandEnv): Command {
  const zone = program
    .command('zone')
    .description('export a zone as a master file, or import delegations and mappings from one');
  zone.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery zone export --config ./net/dp44/config.json --zone +44 --out 44.zone
  $ mimi-discovery zone import --config ./net/dp44/config.json --zone +44 --file 44.zone`,
  );

  zone
    .command('export')
    .description(
      'write a zone as an RFC 1035 master file, signed with an NSEC3 chain for stock secondaries',
    )
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--zone <zone>', 'the zone (a zone name or a range such as +44)')
    .option('--out <file>', 'write to this file (replacing it) instead of stdout')
    .option(
      '--no-nsec3',
      'the records as served (RRSIGs, no NSEC3 chain): a backup, not for secondaries',
    )
    .addHelpText(
      'after',
      `
The NSEC3 chain makes the zone enumerable to whoever can query the servers that load it
(hashes of phone numbers are cheap to reverse): export only to your own secondaries.

Examples:
  $ mimi-discovery zone export --config ./net/dp44/config.json --zone +44 --out 44.zone
  $ ldns-verify-zone 44.zone`,
    )
    .action(async (flags: ExportFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const origin = zoneOf('--zone', flags.zone, config.apex);
      const text = await withStore(config, env, (store) => {
        selectZones(store, origin);
        return exportZone(store, origin, { nsec3: flags.nsec3, now: env.now() });
      });
      if (flags.out === undefined) env.out(text);
      else {
        const out = resolve(env.cwd, flags.out);
        await writeReplacing(out, text, 0o644);
        env.out(`wrote zone ${origin} to ${out}\n`);
      }
    });

  zone
    .command('import')
    .description(
      'import delegations, MAP, MAPREF and AUTHKEY records from a master file into a zone',
    )
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--zone <zone>', 'the zone (a zone name or a range such as +44)')
    .requiredOption('--file <file>', 'the master file (relative names are relative to the zone)')
    .option('--json', 'print {zone, rrsets, records, serial, skipped} as JSON')
    .addHelpText(
      'after',
      `
SOA, DNSKEY, RRSIG, NSEC, NSEC3 and NSEC3PARAM are skipped: the store keeps and signs its own.
Delegation RRsets in the file replace the zone's RRset of the same name and type; MAP, MAPREF
and AUTHKEY records are added to what the zone holds, by the rules the registration API applies.

Examples:
  $ mimi-discovery zone import --config ./net/root/config.json --zone mimi.arpa --file delegations.zone`,
    )
    .action(async (flags: ImportFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const origin = zoneOf('--zone', flags.zone, config.apex);
      const text = await readFile(resolve(env.cwd, flags.file), 'utf8');
      const records = parseZoneFile(text, { origin, defaultTtl: 3600 });
      const report = await withStore(config, env, async (store) => {
        selectZones(store, origin);
        return importRecords(store, origin, config.apex, records, env.now());
      });
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        env.out(
          `imported ${report.rrsets} RRsets (${report.records} records) into ${report.zone}` +
            `${report.serial !== undefined ? ` (serial ${report.serial})` : ''}\n`,
        );
        for (const s of report.skipped) env.out(`skipped ${s.count} ${s.type}: ${s.reason}\n`);
      }
    });
  return zone;
}

const STORE_OWN: ReadonlySet<string> = new Set([
  'SOA',
  'DNSKEY',
  'RRSIG',
  'NSEC',
  'NSEC3',
  'NSEC3PARAM',
]);

/** Why a record is not imported at `now`, or undefined when it is. */
function skipReason(
  rr: ResourceRecord,
  origin: string,
  apex: string,
  now: number,
): string | undefined {
  const owner = canonicalName(rr.name);
  if (STORE_OWN.has(rr.type)) return 'the store makes and signs these itself';
  if (rr.class !== 'IN') return 'not class IN';
  if (!isSubdomain(owner, origin)) return `outside zone ${origin}`;
  const atApex = owner === origin;
  switch (rr.type) {
    case 'NS':
      return atApex ? 'the apex NS is set by init' : undefined;
    case 'DS':
    case 'A':
    case 'AAAA':
    case 'MAPREF':
      return atApex ? 'not a delegation, address, mapping or key' : undefined;
    case 'SVCB':
      return owner.startsWith('_dns.') ? undefined : 'SVCB is imported only at _dns.<nameserver>';
    case 'AUTHKEY':
      return atApex ? undefined : 'AUTHKEY belongs at the apex';
    case 'MAP':
      return mappingProblem(rr.data, owner, apex, now);
    default:
      return 'not a delegation, address, mapping or key';
  }
}

/**
 * Why MAP RDATA at `owner` is not imported, or undefined when it is: a mapping signed for the
 * phone CSI of its owner name (see the module comment). Its times are left to the store, which
 * refuses an expired mapping as it refuses one sent to the registration API.
 */
function mappingProblem(
  data: Uint8Array,
  owner: string,
  apex: string,
  now: number,
): string | undefined {
  const csi = nameToCsi(owner, apex);
  if (csi === undefined) {
    return isSubdomain(owner, `email.${canonicalName(apex)}`)
      ? 'MAP at an email name, which gives no CSI to verify it for (publish it through the registration API)'
      : 'MAP at a name that is no CSI name';
  }
  const verified = verifyMapping(data, { csi, now });
  if (verified.kind === 'verified') return undefined;
  switch (verified.reason) {
    case 'expired':
    case 'not-yet-valid':
      return undefined;
    case 'malformed':
      return 'MAP RDATA that is not a mapping';
    case 'unsupported-version':
      return 'MAP of an unsupported version (version 1 spelled the CSI)';
    default:
      return `MAP not signed for the CSI of its name (${verified.reason})`;
  }
}

/** Imports `records` into the zone `origin` of `store` at time `now` (see the module comment). */
export async function importRecords(
  store: DiscoveryStore,
  origin: string,
  apex: string,
  records: readonly ResourceRecord[],
  now: number,
): Promise<ImportReport> {
  const skipped = new Map<string, SkippedJson>();
  const skip = (type: string, reason: string): void => {
    const key = `${type}\u0000${reason}`;
    const entry = skipped.get(key) ?? { type, count: 0, reason };
    entry.count += 1;
    skipped.set(key, entry);
  };
  const rrsets = new Map<string, { name: string; type: RRType; records: ResourceRecord[] }>();
  for (const rr of records) {
    const reason = skipReason(rr, origin, apex, now);
    if (reason !== undefined) {
      skip(rr.type, reason);
      continue;
    }
    const name = canonicalName(rr.name);
    const key = `${name}\u0000${rr.type}`;
    const rrset = rrsets.get(key) ?? { name, type: rr.type, records: [] };
    rrset.records.push({ ...rr, name });
    rrsets.set(key, rrset);
  }

  // Design §5: every delegation is signed. A cut in the file needs its DS in the file or in the
  // zone already; the check runs before anything is written.
  for (const rrset of rrsets.values()) {
    if (rrset.type !== 'NS' || rrsets.has(`${rrset.name}\u0000DS`)) continue;
    if (store.readRRset(origin, rrset.name, 'DS').length > 0) continue;
    throw failure(
      'ERR_DELEGATION_NO_DS',
      `the delegation of ${rrset.name} has no DS in the file or the zone: every delegation is signed (design §5)`,
    );
  }

  let serial: number | undefined;
  const taken = new Set<string>();
  let recordsTaken = 0;
  const byOwner = new Map<string, RRsetChange[]>();
  /** One operation per MAP record, MAPREF RRset and AUTHKEY RRset, with what it stands for. */
  const operations: Array<{ operation: StoreOperation; rrset: string; records: number }> = [];
  for (const [id, rrset] of rrsets) {
    switch (rrset.type) {
      case 'MAP': {
        // skipReason let through only MAP records at phone names: the name gives the CSI.
        const csi = nameToCsi(rrset.name, apex);
        if (csi === undefined) break;
        for (const rr of rrset.records) {
          if (rr.type !== 'MAP') continue;
          operations.push({
            operation: {
              kind: 'publish-mapping',
              name: rrset.name,
              csi,
              mapping: rr.data,
              now,
              authorize: false,
            },
            rrset: id,
            records: 1,
          });
        }
        break;
      }
      case 'MAPREF':
        operations.push({
          operation: {
            kind: 'add-maprefs',
            name: rrset.name,
            targets: rrset.records.flatMap((rr) => (rr.type === 'MAPREF' ? [rr.data] : [])),
            ttl: Math.min(...rrset.records.map((rr) => rr.ttl)),
          },
          rrset: id,
          records: rrset.records.length,
        });
        break;
      case 'AUTHKEY':
        operations.push({
          operation: {
            kind: 'add-authkeys',
            keys: rrset.records.flatMap((rr) => (rr.type === 'AUTHKEY' ? [rr.data] : [])),
          },
          rrset: id,
          records: rrset.records.length,
        });
        break;
      default: {
        const list = byOwner.get(rrset.name) ?? [];
        list.push({ op: 'put', name: rrset.name, type: rrset.type, records: rrset.records });
        byOwner.set(rrset.name, list);
        taken.add(id);
        recordsTaken += rrset.records.length;
      }
    }
  }

  let batch: RRsetChange[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    serial = (await store.apply(origin, batch)).serial;
    batch = [];
  };
  for (const changes of byOwner.values()) {
    if (batch.length + changes.length > MAX_CHANGES_PER_APPLY) await flush();
    batch.push(...changes);
  }
  await flush();

  const settle = (outcome: OperationOutcome, entry: (typeof operations)[number]): void => {
    if (outcome.kind === 'refused') {
      skip(rrsets.get(entry.rrset)?.type ?? 'MAP', `refused by the store: ${outcome.reason}`);
      return;
    }
    serial = Math.max(serial ?? 0, outcome.serial);
    taken.add(entry.rrset);
    recordsTaken += entry.records;
  };
  for (let i = 0; i < operations.length; i += IMPORT_OPERATIONS_IN_FLIGHT) {
    const window = operations.slice(i, i + IMPORT_OPERATIONS_IN_FLIGHT);
    const outcomes = await Promise.all(
      window.map((entry) => store.applyOperation(origin, entry.operation)),
    );
    outcomes.forEach((outcome, j) => settle(outcome, window[j] as (typeof operations)[number]));
  }
  return {
    zone: origin,
    rrsets: taken.size,
    records: recordsTaken,
    serial,
    skipped: [...skipped.values()],
  };
}
