import { ED25519_PUBLIC_KEY_OCTETS, type AuthkeyRole } from '@mimi-discovery/common';
import {
  AuthkeyError,
  addAuthkey,
  listAuthkeys,
  removeAuthkey,
  renewProverAuthkey,
  type AuthkeyChange,
  type AuthkeyListing,
  type DpConfig,
} from '@mimi-discovery/authoritative';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, selectZones, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { failure } from '../errors.js';
import { days, domainName } from '../flag-values.js';
import { formatTable } from '../table.js';

/**
 * `keys list|add-prover|remove-prover|add-csip|remove-csip|renew`: the keys authorized for a
 * DP's range (design §4), its apex AUTHKEY RRset — provers, whose attestations resolvers accept,
 * and CSIPs, whose revocations the DP accepts — changed one key at a time through the store's
 * operations (`keys/authkeys.ts` of the authoritative package), so a running DP and this command
 * never overwrite each other's changes. Every write gives the RRset the config's `authkeyTtl`
 * (`add-*` lowers it to that at most), which bounds how long resolvers keep the old RRset.
 *
 * A public key is given as base64 or base64url (32 octets, Ed25519). A bad flag exits 1; a zone
 * the store does not hold, a key that is not listed, or the DP's own prover key given to
 * `remove-prover` exit 2; nothing is written then.
 */

interface ZoneFlags {
  config?: string;
  zone: string;
  json?: boolean;
}

interface ListFlags {
  config?: string;
  zone?: string;
  json?: boolean;
}

interface KeyFlags extends ZoneFlags {
  publicKey: Uint8Array;
}

interface AddFlags extends KeyFlags {
  days?: number;
}

interface RenewFlags extends ListFlags {
  days?: number;
}

/** One AUTHKEY as `keys list --json` prints it. */
export interface AuthkeyJson {
  role: AuthkeyRole;
  algorithm: number;
  /** base64url, as the registration API writes keys. */
  publicKey: string;
  notAfter: number;
  own: boolean;
}

/** What `keys list --json` prints for each zone. */
export interface AuthkeyListingJson {
  zone: string;
  ttl: number | null;
  keys: AuthkeyJson[];
}

/** What `keys add-*`, `remove-*` and `renew --json` print. */
export interface AuthkeyChangeJson {
  zone: string;
  role: AuthkeyRole;
  publicKey: string;
  notAfter?: number;
  serial: number;
  changed: boolean;
  /** The AUTHKEY TTL from the config: how long resolvers may still hold the previous RRset. */
  ttl: number;
}

const DAY = 86_400;

/** Adds the AUTHKEY subcommands to the `keys` command. */
export function registerAuthorizedKeys(keys: Command, env: CommandEnv): void {
  keys
    .command('list')
    .description("print the keys authorized for the DP's zones (AUTHKEY: provers and CSIPs)")
    .option('--config <file>', 'config file of the DP (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--zone <origin>', 'only this zone (default: every zone of the store)', domainName)
    .option('--json', 'print them as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  $ mimi-discovery keys list --config ./net/dp44/config.json --zone 4.4.e164.mimi.arpa',
    )
    .action(async (flags: ListFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const listings = await withStore(config, env, (store) =>
        selectZones(store, flags.zone).map((zone) => listingJson(listAuthkeys(store, zone))),
      );
      if (flags.json === true) env.out(`${JSON.stringify(listings, null, 2)}\n`);
      else env.out(listings.map(listingText).join('\n'));
    });

  for (const role of ['prover', 'csip'] as const) {
    const what =
      role === 'prover'
        ? 'an independent prover (its attestations are accepted for the range)'
        : 'a CSIP key (its revocations are accepted for the range)';
    keyFlags(
      keys
        .command(`add-${role}`)
        .description(`authorize ${what}`)
        .option(
          '--days <n>',
          'how long the key stays authorized (default: prover.authkeyValidityDays of the config)',
          days,
        ),
    )
      .addHelpText(
        'after',
        `\nExamples:\n  $ mimi-discovery keys add-${role} --config ./net/dp44/config.json --zone 4.4.e164.mimi.arpa --public-key 3q2-7w…`,
      )
      .action(async (flags: AddFlags) => {
        const { config } = await loadConfig(flags.config, env);
        const now = env.now();
        const notAfter = now + (flags.days ?? config.prover.authkeyValidityDays) * DAY;
        const change = await withStore(config, env, (store) =>
          authkeyCall(() =>
            addAuthkey(
              store,
              flags.zone,
              { role, publicKey: flags.publicKey, notAfter },
              { now, ttl: config.authkeyTtl },
            ),
          ),
        );
        report(env, flags, changeJson(config, change, role, flags.publicKey, notAfter), (json) =>
          json.changed
            ? `authorized ${role} ${json.publicKey} in ${json.zone} until ${iso(notAfter)} (serial ${json.serial})`
            : `${role} ${json.publicKey} was already authorized in ${json.zone}; unchanged (renew changes the DP's own key)`,
        );
      });

    keyFlags(keys.command(`remove-${role}`).description(`withdraw ${what.replace(/ \(.*/, '')}`))
      .addHelpText(
        'after',
        `\nExamples:\n  $ mimi-discovery keys remove-${role} --config ./net/dp44/config.json --zone 4.4.e164.mimi.arpa --public-key 3q2-7w…`,
      )
      .action(async (flags: KeyFlags) => {
        const { config } = await loadConfig(flags.config, env);
        const change = await withStore(config, env, (store) =>
          authkeyCall(() =>
            removeAuthkey(
              store,
              flags.zone,
              { role, publicKey: flags.publicKey },
              { ttl: config.authkeyTtl },
            ),
          ),
        );
        report(
          env,
          flags,
          changeJson(config, change, role, flags.publicKey, undefined),
          (json) => `removed ${role} ${json.publicKey} from ${json.zone} (serial ${json.serial})`,
        );
      });
  }

  keys
    .command('renew')
    .description(
      "renew the DP's own prover key in its zones (AUTHKEY notAfter = now + prover.authkeyValidityDays)",
    )
    .option('--config <file>', 'config file of the DP (default: $MIMI_DISCOVERY_CONFIG)')
    .option('--zone <origin>', 'only this zone (default: every zone of the store)', domainName)
    .option('--days <n>', 'validity from now (default: prover.authkeyValidityDays)', days)
    .option('--json', 'print what was renewed as JSON')
    .addHelpText(
      'after',
      `
A running DP renews its key on its own once fewer than prover.renewBeforeDays remain.

Examples:
  $ mimi-discovery keys renew --config ./net/dp44/config.json`,
    )
    .action(async (flags: RenewFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const now = env.now();
      const validityDays = flags.days ?? config.prover.authkeyValidityDays;
      const done = await withStore(config, env, async (store) => {
        const out: AuthkeyChangeJson[] = [];
        for (const zone of selectZones(store, flags.zone)) {
          const change = await authkeyCall(() =>
            renewProverAuthkey(store, zone, { now, validityDays, ttl: config.authkeyTtl }),
          );
          out.push(
            changeJson(config, change, 'prover', store.proverKey().publicKey, change.notAfter),
          );
        }
        return out;
      });
      if (flags.json === true) env.out(`${JSON.stringify(done, null, 2)}\n`);
      else {
        for (const json of done) {
          env.out(
            `renewed the prover key ${json.publicKey} of ${json.zone} until ${iso(json.notAfter ?? 0)} (serial ${json.serial})\n`,
          );
        }
      }
    });
}

function keyFlags(command: Command): Command {
  return command
    .option('--config <file>', 'config file of the DP (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--zone <origin>', "the DP's zone (4.4.e164.mimi.arpa)", domainName)
    .requiredOption(
      '--public-key <key>',
      'the Ed25519 public key, base64 or base64url (32 octets)',
      publicKey,
    )
    .option('--json', 'print the change as JSON');
}

/** An Ed25519 public key in base64 or base64url, 32 octets. */
export function publicKey(value: string): Uint8Array {
  const text = value.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    throw new InvalidArgumentError('expected base64 or base64url');
  }
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (bytes.length !== ED25519_PUBLIC_KEY_OCTETS) {
    throw new InvalidArgumentError(
      `expected an Ed25519 public key of ${ED25519_PUBLIC_KEY_OCTETS} octets, got ${bytes.length}`,
    );
  }
  return new Uint8Array(bytes);
}

/** Runs an AUTHKEY change; its refusals end the command with their code (exit 2). */
async function authkeyCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof AuthkeyError) throw failure(error.code, error.message, error);
    throw error;
  }
}

function report(
  env: CommandEnv,
  flags: { json?: boolean },
  json: AuthkeyChangeJson,
  text: (json: AuthkeyChangeJson) => string,
): void {
  if (flags.json === true) {
    env.out(`${JSON.stringify(json, null, 2)}\n`);
    return;
  }
  env.out(`${text(json)}\n`);
  if (json.changed) {
    env.out(
      `resolvers holding the previous AUTHKEY RRset see the change within ${json.ttl} s (authkeyTtl)\n`,
    );
  }
}

function changeJson(
  config: DpConfig,
  change: AuthkeyChange,
  role: AuthkeyRole,
  key: Uint8Array,
  notAfter: number | undefined,
): AuthkeyChangeJson {
  return {
    zone: change.zone,
    role,
    publicKey: Buffer.from(key).toString('base64url'),
    ...(notAfter === undefined ? {} : { notAfter }),
    serial: change.serial,
    changed: change.changed,
    ttl: config.authkeyTtl,
  };
}

function listingJson(listing: AuthkeyListing): AuthkeyListingJson {
  return {
    zone: listing.zone,
    ttl: listing.ttl ?? null,
    keys: listing.keys.map((k) => ({
      role: k.role,
      algorithm: k.algorithm,
      publicKey: Buffer.from(k.publicKey).toString('base64url'),
      notAfter: k.notAfter,
      own: k.own,
    })),
  };
}

function listingText(listing: AuthkeyListingJson): string {
  if (listing.keys.length === 0) return `${listing.zone}: no authorized keys\n`;
  const rows = [['ROLE', 'PUBLIC KEY', 'NOT AFTER', '']];
  for (const k of listing.keys) {
    rows.push([k.role, k.publicKey, iso(k.notAfter), k.own ? "this DP's prover" : '']);
  }
  return `${listing.zone} (AUTHKEY TTL ${listing.ttl ?? '-'} s)\n${formatTable(rows)}`;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}
