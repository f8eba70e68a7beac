import { isIPv6 } from 'node:net';
import { resolve } from 'node:path';
import {
  DEFAULT_DOH_PATH,
  createTrustAnchor,
  formatBindTrustAnchors,
  formatTrustAnchor,
  isSubdomain,
} from '@mimi-discovery/common';
import { formatRootHints, rootTrustAnchor, type RootServerHint } from '@mimi-discovery/root';
import { Option, type Command } from 'commander';
import { loadConfig, requireRole, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { dsJson, isEntryKey } from '../ds-records.js';
import { failure, usageError } from '../errors.js';
import { writeReplacing } from '../files.js';
import { isPublishableAddress } from '../flag-values.js';

/**
 * `trust-anchor` and `hints`: what a resolver needs to start from the root directory (design
 * §6) — the root zone's DS and DNSKEY of every SEP key the apex publishes that is not revoked
 * (both during a key roll) in the file format Unbound reads (or BIND's
 * `trust-anchors` statement for `delv -a`), and the root hints JSON with the root server's
 * name, address, plain DNS port and DoH URL. Both are derived from the root's config and store;
 * `--out` replaces the file atomically, since both are rewritten when the root changes.
 */

interface AnchorFlags {
  config?: string;
  format: 'ds' | 'bind';
  out?: string;
  json?: boolean;
}

interface HintsFlags {
  config?: string;
  out?: string;
}

/** Adds `trust-anchor` and `hints` to `program`. */
export function registerTrustAnchor(program: Command, env: CommandEnv): void {
  program
    .command('trust-anchor')
    .description("print (or write) the root zone's trust anchor for resolvers and validators")
    .option('--config <file>', "the root directory's config (default: $MIMI_DISCOVERY_CONFIG)")
    .addOption(
      new Option(
        '--format <format>',
        'ds: DS and DNSKEY lines (Unbound); bind: trust-anchors { } for delv -a',
      )
        .choices(['ds', 'bind'])
        .default('ds'),
    )
    .option('--out <file>', 'write the anchor to this file (replacing it) instead of stdout')
    .option('--json', 'print {zone, ds, dnskeys} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery trust-anchor --config ./net/root/config.json --out ./net/root.key
  $ mimi-discovery trust-anchor --config ./net/root/config.json --format bind --out ./net/delv.conf
  $ delv -a ./net/delv.conf +root=mimi.arpa -p 5300 @127.0.0.1 mimi.arpa SOA`,
    )
    .action(async (flags: AnchorFlags) => {
      const loaded = await loadConfig(flags.config, env);
      requireRole(loaded, 'root', 'trust-anchor');
      const { config } = loaded;
      // Every SEP key the apex publishes and has not revoked: both keys during a roll, so that a
      // resolver started then trusts whichever signs next (RFC 5011 §2.1: never a revoked one).
      const published = await withStore(config, env, (store) =>
        rootTrustAnchor(store, config.apex),
      );
      const anchor = createTrustAnchor(published.zone, published.dnskeys.filter(isEntryKey));
      if (anchor.dnskeys.length === 0) {
        throw failure(
          'ERR_CLI_NO_ZONE',
          `${published.zone} publishes no SEP key that is not revoked`,
        );
      }
      const text =
        flags.format === 'bind' ? formatBindTrustAnchors(anchor) : formatTrustAnchor(anchor);
      const out = flags.out === undefined ? undefined : resolve(env.cwd, flags.out);
      if (out !== undefined) await writeReplacing(out, text, 0o644);
      if (flags.json === true) {
        const json = {
          zone: anchor.zone,
          ds: anchor.ds.map((ds) => dsJson(anchor.zone, ds)),
          dnskeys: anchor.dnskeys.map((k) => ({
            flags: k.flags,
            protocol: k.protocol,
            algorithm: k.algorithm,
            publicKey: Buffer.from(k.publicKey).toString('base64'),
          })),
          ...(out !== undefined ? { file: out } : {}),
        };
        env.out(`${JSON.stringify(json, null, 2)}\n`);
      } else if (out !== undefined) {
        env.out(`wrote the trust anchor of ${anchor.zone} to ${out}\n`);
      } else env.out(text);
    });

  program
    .command('hints')
    .description("print (or write) the root hints JSON from the root directory's config")
    .option('--config <file>', "the root directory's config (default: $MIMI_DISCOVERY_CONFIG)")
    .option('--out <file>', 'write the hints to this file (replacing it) instead of stdout')
    .addHelpText(
      'after',
      `
Ports of 0 (ephemeral) cannot be published: give the root fixed ports.

Examples:
  $ mimi-discovery hints --config ./net/root/config.json --out ./net/root-hints.json`,
    )
    .action(async (flags: HintsFlags) => {
      const loaded = await loadConfig(flags.config, env);
      requireRole(loaded, 'root', 'hints');
      const { config } = loaded;
      const { host, udp, tcp, doh } = config.listen;
      for (const [key, port] of [
        ['udp', udp],
        ['tcp', tcp],
        ['doh', doh],
      ] as const) {
        if (port === 0) {
          throw usageError(
            'ERR_CLI_EPHEMERAL_PORT',
            `${loaded.path} has listen.${key} 0 (an ephemeral port), which cannot be published in hints`,
          );
        }
      }
      if (udp !== null && tcp !== null && udp !== tcp) {
        throw usageError(
          'ERR_CLI_PORTS',
          `${loaded.path} has listen.udp ${udp} and listen.tcp ${tcp}: root hints carry one port for both`,
        );
      }
      if (udp === null && tcp === null && doh === null) {
        throw usageError('ERR_CLI_PORTS', `${loaded.path} serves no DNS listener to put in hints`);
      }
      const servers = await withStore(config, env, (store) =>
        store.readRRset(config.apex, config.apex, 'NS').flatMap((rr): RootServerHint[] => {
          if (rr.type !== 'NS') return [];
          const name = rr.data.toLowerCase();
          const glue = isSubdomain(name, config.apex)
            ? [
                ...store.readRRset(config.apex, name, 'A'),
                ...store.readRRset(config.apex, name, 'AAAA'),
              ]
            : [];
          const addresses = glue.flatMap((g) =>
            g.type === 'A' || g.type === 'AAAA' ? [g.data] : [],
          );
          if (addresses.length === 0 && isPublishableAddress(host)) addresses.push(host);
          const first = addresses[0];
          const port = udp ?? tcp;
          return [
            {
              name,
              addresses,
              ...(port !== null ? { port } : {}),
              ...(doh !== null && first !== undefined
                ? {
                    doh: `https://${isIPv6(first) ? `[${first}]` : first}:${doh}${DEFAULT_DOH_PATH}`,
                  }
                : {}),
            },
          ];
        }),
      );
      const text = formatRootHints({ apex: config.apex, servers });
      if (flags.out === undefined) env.out(text);
      else {
        const out = resolve(env.cwd, flags.out);
        await writeReplacing(out, text, 0o644);
        env.out(`wrote the root hints of ${config.apex} to ${out}\n`);
      }
    });
}
