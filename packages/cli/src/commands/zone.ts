import { open, readFile, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { canonicalName } from '@mimi-discovery/common';
import {
  MAX_RECORDS_PER_RRSET,
  createRangeAuthkeys,
  exportForm,
  exportZoneText,
  type ApplyResult,
} from '@mimi-discovery/authoritative';
import type { Command } from 'commander';
import { loadConfig, selectZones, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure, usageError } from '../errors.js';
import { writeReplacingStream } from '../files.js';
import { zoneOf } from '../flag-values.js';
import { NO_PROGRESS, createProgress, type Progress } from '../progress.js';
import { importZoneFile, type ImportPass, type ImportSource } from '../zone-import.js';

/**
 * `zone export`, `zone import` and `zone nsec3`: a zone of the store as an RFC 1035 master file,
 * the records of such a file taken back into a zone (`zone-import.ts`), and whether a zone keeps
 * an NSEC3 chain for stock secondaries.
 *
 * Export and import stream: the file is written as the store is read, and read as it is
 * imported, so a zone of millions of CSIs goes through in constant memory (the export of a
 * zone without a chain, signed with one in memory, excepted: `exportZoneText`). Progress goes
 * to stderr when it is a terminal (`--progress`, `--no-progress`), never to stdout.
 *
 * Export, by default, gives the zone with an NSEC3 chain, the form stock secondaries (NSD, Knot,
 * BIND) can serve: a zone that keeps its chain (`zone nsec3 on`) as stored, any other signed
 * afresh in memory; `--no-nsec3` writes the records as served instead (RRSIGs included, no
 * chain), a backup rather than something to serve. NSEC3 hashes of phone numbers are cheap to
 * reverse: export only to your own secondaries.
 */

interface ExportFlags {
  config?: string;
  zone: string;
  out?: string;
  nsec3: boolean;
  progress?: boolean;
}

interface ImportFlags {
  config?: string;
  zone: string;
  file: string;
  json?: boolean;
  progress?: boolean;
}

interface Nsec3Flags {
  config?: string;
  zone?: string;
  json?: boolean;
}

/** What `zone nsec3` did to one zone. */
export interface Nsec3Json {
  zone: string;
  nsec3: boolean;
  serial: number;
  /** Whether the chain was added or dropped (false: it already was so). */
  changed: boolean;
}

/** Adds `zone export`, `zone import` and `zone nsec3` to `program`. */
export function registerZone(program: Command, env: CommandEnv): Command {
  const zone = program
    .command('zone')
    .description(
      'export a zone as a master file, import delegations and mappings from one, or keep an NSEC3 chain',
    );
  zone.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery zone export --config ./net/dp44/config.json --zone +44 --out 44.zone
  $ mimi-discovery zone import --config ./net/dp44/config.json --zone +44 --file 44.zone
  $ mimi-discovery zone nsec3 on --config ./net/dp44/config.json --zone +44`,
  );

  zone
    .command('export')
    .description(
      'write a zone as an RFC 1035 master file, signed with an NSEC3 chain for stock secondaries',
    )
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--zone <zone>', 'the zone (a zone name or a range such as +44)')
    .option('--out <file>', 'write to this file (replacing it once complete) instead of stdout')
    .option(
      '--no-nsec3',
      'the records as served (RRSIGs, no NSEC3 chain): a backup, not for secondaries',
    )
    .option('--progress', 'show progress on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'never show progress')
    .addHelpText(
      'after',
      `
The file is written as the store is read, in constant memory, except in one case: with the
NSEC3 chain (the default) for a zone that does not keep one, the zone is signed with a chain in
memory, which takes memory in proportion to the zone (fine for thousands of CSIs). For a large
zone, keep the chain in the store ('zone nsec3 on'): the export then streams it as stored.

The NSEC3 chain makes the zone enumerable to whoever can query the servers that load it
(hashes of phone numbers are cheap to reverse): export only to your own secondaries.

Examples:
  $ mimi-discovery zone export --config ./net/dp44/config.json --zone +44 --out 44.zone
  $ ldns-verify-zone 44.zone
  $ mimi-discovery zone export --config ./net/dp44/config.json --zone +44 --no-nsec3 | gzip > 44.zone.gz`,
    )
    .action(async (flags: ExportFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const origin = zoneOf('--zone', flags.zone, config.apex);
      const out = flags.out === undefined ? undefined : resolve(env.cwd, flags.out);
      await withStore(config, env, async (store) => {
        selectZones(store, origin);
        const form = exportForm(store, origin, flags.nsec3);
        const progress = progressFor(
          flags.progress,
          env,
          form === 'signed-in-memory' ? 'export (signed in memory)' : 'export',
        );
        try {
          const pieces = counted(
            exportZoneText(store, origin, { nsec3: flags.nsec3, now: env.now() }),
            progress,
          );
          if (out === undefined) await env.outStream(pieces);
          else await writeReplacingStream(out, pieces, 0o644);
        } finally {
          progress.done();
        }
      });
      if (out !== undefined) env.out(`wrote zone ${origin} to ${out}\n`);
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
    .option('--progress', 'show progress on stderr (default: when stderr is a terminal)')
    .option('--no-progress', 'never show progress')
    .addHelpText(
      'after',
      `
SOA, DNSKEY, RRSIG, NSEC, NSEC3 and NSEC3PARAM are skipped: the store keeps and signs its own.
Delegation RRsets in the file replace the zone's RRset of the same name and type; MAP, MAPREF
and AUTHKEY records are added to what the zone holds, by the rules the registration API applies.
Into the config's mspZone.zone, MAP records at phone MAPREF-target names are imported too, each
attestation's prover checked against the CSI's own range through mspZone.resolver.

The file is read twice, as a stream, in constant memory. The first pass writes nothing: every
line must read, the records of one owner name must be on consecutive lines (as in every file a
server or 'zone export' writes), no RRset may exceed ${MAX_RECORDS_PER_RRSET} records, and every delegation
needs its DS (in the file or the zone); a file that fails changes nothing. The second pass
writes in batches, each atomic and durable; if it is interrupted, the batches written stay and
importing the same file again completes the import.

Examples:
  $ mimi-discovery zone import --config ./net/root/config.json --zone mimi.arpa --file delegations.zone`,
    )
    .action(async (flags: ImportFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const origin = zoneOf('--zone', flags.zone, config.apex);
      const path = resolve(env.cwd, flags.file);
      const file = await open(path, 'r');
      let progress: Progress = NO_PROGRESS;
      // The MSP zone's mappings of other ranges: their provers checked through the resolver.
      const msp = config.mspZone;
      const authkeys =
        msp !== undefined && canonicalName(msp.zone) === origin
          ? createRangeAuthkeys({
              resolver: msp.resolver,
              ...(msp.ca === undefined ? {} : { ca: await readFile(msp.ca, 'utf8') }),
              apex: config.apex,
              cacheEntries: msp.authkeyCacheEntries,
              timeoutMs: msp.timeoutMs,
              now: env.now,
            })
          : undefined;
      try {
        const report = await withStore(config, env, async (store) => {
          selectZones(store, origin);
          const source = fileSource(file, path, (pass) => {
            progress.done();
            progress = progressFor(
              flags.progress,
              env,
              pass === 'check' ? 'import, checking' : 'import, writing',
            );
            return progress;
          });
          return importZoneFile(store, source, {
            origin,
            apex: config.apex,
            now: env.now(),
            onRecords: (_pass, records) => progress.add(records, 0),
            ...(authkeys === undefined || msp === undefined
              ? {}
              : { msp: { zone: msp.zone, authkeys } }),
          });
        });
        if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
        else {
          env.out(
            `imported ${report.rrsets} RRsets (${report.records} records) into ${report.zone}` +
              `${report.serial !== undefined ? ` (serial ${report.serial})` : ''}\n`,
          );
          for (const s of report.skipped) env.out(`skipped ${s.count} ${s.type}: ${s.reason}\n`);
        }
      } finally {
        progress.done();
        await file.close();
        await authkeys?.close();
      }
    });

  zone
    .command('nsec3')
    .description("keep (on) or drop (off) a zone's NSEC3 chain for stock secondaries")
    .argument('<state>', 'on or off')
    .option('--config <file>', 'config file of the server (default: $MIMI_DISCOVERY_CONFIG)')
    .option(
      '--zone <zone>',
      'only this zone (a zone name, or a range such as +44; default: every zone)',
    )
    .option('--json', 'print a JSON list of {zone, nsec3, serial, changed}')
    .addHelpText(
      'after',
      `
With the chain on, the store keeps a standard NSEC3 chain (RFC 9276: 0 iterations, no salt) in
the zone, updated at every write, for secondaries that cannot sign denials online (NSD, Knot,
BIND); zone transfers and 'zone export' then carry it as stored. Our own servers still answer
with compact denials. The chain makes the zone enumerable to whoever can query the servers
that serve it (hashes of phone numbers are cheap to reverse): turn it on only for zones that
go to your own secondaries.

Examples:
  $ mimi-discovery zone nsec3 on --config ./net/dp44/config.json --zone +44
  $ mimi-discovery zone nsec3 off --config ./net/dp44/config.json --zone +44 --json`,
    )
    .action(async (state: string, flags: Nsec3Flags) => {
      if (state !== 'on' && state !== 'off') {
        throw usageError('ERR_USAGE', `zone nsec3 takes on or off, not ${JSON.stringify(state)}`);
      }
      const enabled = state === 'on';
      const { config } = await loadConfig(flags.config, env);
      const only = flags.zone === undefined ? undefined : zoneOf('--zone', flags.zone, config.apex);
      const results = await withStore(config, env, async (store) => {
        const done: Nsec3Json[] = [];
        for (const origin of selectZones(store, only)) {
          const before = store.zoneInfo(origin);
          const result: ApplyResult = await store.setNsec3(origin, enabled);
          done.push({
            zone: origin,
            nsec3: enabled,
            serial: result.serial,
            changed: before?.nsec3 !== enabled,
          });
        }
        return done;
      });
      if (flags.json === true) {
        env.out(`${JSON.stringify(results, null, 2)}\n`);
        return;
      }
      for (const r of results) {
        const what = r.nsec3 ? 'keeps an NSEC3 chain' : 'keeps no NSEC3 chain';
        env.out(`zone ${r.zone} ${what} (serial ${r.serial}${r.changed ? '' : ', unchanged'})\n`);
      }
    });
  return zone;
}

/**
 * The progress line of a command: shown when `--progress` was given, or when neither it nor
 * `--no-progress` was and stderr is a terminal.
 */
function progressFor(flag: boolean | undefined, env: CommandEnv, label: string): Progress {
  return (flag ?? env.errIsTTY) ? createProgress(label, (text) => env.err(text)) : NO_PROGRESS;
}

/** `pieces` of master-file text, each counted in `progress` (lines are records) as it passes. */
async function* counted(pieces: AsyncIterable<string>, progress: Progress): AsyncGenerator<string> {
  for await (const piece of pieces) {
    let lines = 0;
    for (let at = piece.indexOf('\n'); at >= 0; at = piece.indexOf('\n', at + 1)) lines++;
    progress.add(lines, Buffer.byteLength(piece));
    yield piece;
  }
}

/** Octets read from the file at a time. */
const READ_OCTETS = 64 * 1024;

/**
 * The master file of an import, read from `file` (open) once per pass from its start, decoded as
 * UTF-8 piece by piece. The file must not change between the passes: its size and modification
 * time are compared before the second, which fails before anything is written when they differ.
 * `progressOf` gives the progress line of each pass (its octets are counted here).
 */
function fileSource(
  file: FileHandle,
  path: string,
  progressOf: (pass: ImportPass) => Progress,
): ImportSource {
  let first: { size: number; mtimeMs: number } | undefined;
  return async function* read(pass) {
    const stat = await file.stat();
    if (first === undefined) first = { size: stat.size, mtimeMs: stat.mtimeMs };
    else if (first.size !== stat.size || first.mtimeMs !== stat.mtimeMs) {
      throw failure(
        'ERR_CLI_FILE_CHANGED',
        `${path} changed while it was being imported (after it was checked): nothing was written`,
      );
    }
    const progress = progressOf(pass);
    const decoder = new TextDecoder('utf-8');
    const buffer = Buffer.alloc(READ_OCTETS);
    let position = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      position += bytesRead;
      progress.add(0, bytesRead);
      yield decoder.decode(buffer.subarray(0, bytesRead), { stream: true });
    }
    const rest = decoder.decode();
    if (rest !== '') yield rest;
  };
}
