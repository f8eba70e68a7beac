import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import {
  KeyFileError,
  TSIG_ALGORITHMS,
  createTsigKey,
  formatTsigKeyFile,
  parsePublicKeyFile,
  tsigMacOctets,
  type KeyconfData,
  type SvcParams,
  type TsigAlgorithm,
} from '@mimi-discovery/common';
import {
  DEFAULT_KEYCONF_TTL,
  KeyconfError,
  keyconfChanges,
  listKeys,
  publishKeys,
} from '@mimi-discovery/authoritative';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { loadConfig, withStore } from '../config-file.js';
import type { CommandEnv } from '../context.js';
import { usageError } from '../errors.js';
import { domainName } from '../flag-values.js';
import { writeNew } from '../files.js';
import { formatTable } from '../table.js';
import { registerAuthorizedKeys } from './authorized-keys.js';
import { registerKeyRoll } from './key-roll.js';

/**
 * `keys publish` and `keys show`: the public keys of an oblivious gateway or a token issuer, as
 * the KEYCONF RRset at the service's name in a DP's zone (and, with `--doh`, the `_dns` SVCB of
 * its DoH service with `ohttp`, RFC 9540 §4), through `publishKeys` and `listKeys` of the
 * authoritative package.
 *
 * `--from` is the public-key file the gateway or issuer keeps in its key directory
 * (`gateway-public-keys.json`, `issuer-public-keys.json`); only its unexpired keys are published,
 * and they replace whatever the RRset held. Everything is checked before the store is opened: a
 * bad file, a file with no unexpired key or a bad `--doh` URL is refused (exit 1), an owner in
 * none of the store's zones or below a delegation in it too (exit 2), and nothing is written.
 *
 * A running server sees the change from its next query on (see `delegate`); run it again at
 * every rotation (the file is rewritten then).
 *
 * `keys tsig` makes a TSIG key (RFC 8945) for a DP and its secondaries, as BIND's `tsig-keygen`
 * does: a random secret as long as the HMAC's output (32 octets for `hmac-sha256`, 64 for
 * `hmac-sha512`), written as a `key` clause (`formatTsigKeyFile` of common) to stdout or, with
 * `--out`, to a new file of mode 0600 that `transfer.keys[].secretFile` names (docs/operations.md).
 */

interface PublishFlags {
  config?: string;
  name: string;
  from: string;
  doh?: string;
  ttl?: number;
  json?: boolean;
}

interface ShowFlags {
  config?: string;
  name: string;
  json?: boolean;
}

/** A key as JSON: the public-key file's entry, with the SHA-256 of its config. */
export interface KeyJson {
  kind: KeyconfData['kind'];
  config: string;
  sha256: string;
  notBefore: number;
  notAfter: number;
}

/** What `keys publish --json` and `keys show --json` print. */
export interface PublishedKeysJson {
  zone: string;
  name: string;
  serial?: number;
  ttl: number | null;
  keys: KeyJson[];
  svcb: { name: string; target: string; params: SvcParams } | null;
}

interface TsigFlags {
  name: string;
  algorithm: TsigAlgorithm;
  out?: string;
  json?: boolean;
}

/** What `keys tsig --json` prints: the key with its secret, or the file it was written to. */
export interface TsigKeyJson {
  name: string;
  algorithm: TsigAlgorithm;
  secret?: string;
  file?: string;
}

/**
 * Adds `keys publish`, `keys show` and `keys tsig` to `program`, and the AUTHKEY subcommands
 * of `authorized-keys.ts` (`list`, `add-prover`, `remove-prover`, `add-csip`, `remove-csip`,
 * `renew`).
 */
export function registerKeys(program: Command, env: CommandEnv): void {
  const keys = program
    .command('keys')
    .description(
      'publish and show the keys of an oblivious gateway or token issuer (KEYCONF); make TSIG keys; manage the keys authorized for a range (AUTHKEY)',
    );
  registerAuthorizedKeys(keys, env);

  keys
    .command('publish')
    .description(
      "put the unexpired keys of a public-key file as the KEYCONF RRset at a name in the DP's zone, signed",
    )
    .option('--config <file>', 'config file of the DP (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption(
      '--name <owner>',
      'the service name (resolver.chat.example.email.mimi.arpa)',
      domainName,
    )
    .requiredOption('--from <file>', 'the public-key file (gateway-public-keys.json)')
    .option('--doh <url>', "the service's DoH URL: also publish _dns.<owner> SVCB with ohttp")
    .option('--ttl <seconds>', `TTL of the RRsets (default ${DEFAULT_KEYCONF_TTL})`, ttlSeconds)
    .option('--json', 'print what was published as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery keys publish --config ./net/msp/config.json \\
      --name resolver.chat.example.email.mimi.arpa \\
      --from ./net/resolver/keys/gateway-public-keys.json --doh https://127.0.0.1:8447/dns-query
  $ mimi-discovery keys publish --config ./net/msp/config.json \\
      --name issuer.chat.example.email.mimi.arpa --from ./net/issuer/keys/issuer-public-keys.json`,
    )
    .action(async (flags: PublishFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const file = await readKeyFile(flags.from, env);
      const options = {
        now: env.now(),
        ...(flags.doh !== undefined ? { doh: flags.doh } : {}),
        ...(flags.ttl !== undefined ? { ttl: flags.ttl } : {}),
      };
      // The file's and the URL's faults are the caller's (exit 1), found before the store opens.
      try {
        keyconfChanges(flags.name, file.keys, options);
      } catch (error) {
        if (!(error instanceof KeyconfError)) throw error;
        const what = error.code === 'ERR_KEYCONF_NO_KEYS' ? `${file.path}: ` : '--doh: ';
        throw usageError(error.code, `${what}${error.message}`, error);
      }
      const published = await withStore(config, env, (store) =>
        publishKeys(store, flags.name, file.keys, options),
      );
      const json: PublishedKeysJson = {
        zone: published.origin,
        name: published.name,
        serial: published.serial,
        ttl: flags.ttl ?? DEFAULT_KEYCONF_TTL,
        keys: published.keys.map(keyJson),
        svcb: published.svcb ? { name: `_dns.${published.name}`, ...published.svcb } : null,
      };
      if (flags.json === true) env.out(`${JSON.stringify(json, null, 2)}\n`);
      else {
        const n = json.keys.length;
        env.out(
          `published ${n} key${n === 1 ? '' : 's'} at ${json.name} in ${json.zone} (serial ${published.serial})\n`,
        );
        env.out(text(json));
      }
    });

  keys
    .command('show')
    .description('print the KEYCONF RRset and the _dns SVCB published at a name')
    .option('--config <file>', 'config file of the DP (default: $MIMI_DISCOVERY_CONFIG)')
    .requiredOption('--name <owner>', 'the service name', domainName)
    .option('--json', 'print them as JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery keys show --config ./net/msp/config.json --name resolver.chat.example.email.mimi.arpa`,
    )
    .action(async (flags: ShowFlags) => {
      const { config } = await loadConfig(flags.config, env);
      const at = await withStore(config, env, (store) => listKeys(store, flags.name));
      const json: PublishedKeysJson = {
        zone: at.origin,
        name: at.name,
        ttl: at.ttl ?? null,
        keys: at.keys.map(keyJson),
        svcb: at.svcb ? { name: `_dns.${at.name}`, ...at.svcb } : null,
      };
      if (flags.json === true) env.out(`${JSON.stringify(json, null, 2)}\n`);
      else if (json.keys.length === 0 && json.svcb === null) {
        env.out(`no keys published at ${json.name} (zone ${json.zone})\n`);
      } else env.out(text(json));
    });

  keys
    .command('tsig')
    .description(
      'make a TSIG key (RFC 8945) for zone transfers and NOTIFY between a DP and its secondaries, as tsig-keygen does',
    )
    .requiredOption(
      '--name <name>',
      'the key name, the same on both sides (xfr.dp.example)',
      domainName,
    )
    .addOption(
      new Option('--algorithm <algorithm>', 'the HMAC')
        .choices([...TSIG_ALGORITHMS])
        .default('hmac-sha256'),
    )
    .option('--out <file>', 'write the key to this new file (mode 0600) instead of stdout')
    .option('--json', 'print the key (or, with --out, where it went) as JSON')
    .addHelpText(
      'after',
      `
The secret is as long as the HMAC's output. The file is a BIND key clause, as tsig-keygen
writes it: dig -k and nsupdate -k read it, and transfer.keys[].secretFile of a DP's config
names it. Give the same name, algorithm and secret to NSD (key:) and Knot (key:).

Examples:
  $ mimi-discovery keys tsig --name xfr.dp.example --out /etc/mimi-dp/keys/xfr.key
  $ mimi-discovery keys tsig --name xfr.dp.example --algorithm hmac-sha512`,
    )
    .action(async (flags: TsigFlags) => {
      const key = createTsigKey(
        flags.name,
        flags.algorithm,
        randomBytes(tsigMacOctets(flags.algorithm)),
      );
      const file = formatTsigKeyFile(key);
      const json: TsigKeyJson = { name: key.name, algorithm: key.algorithm };
      if (flags.out === undefined) {
        if (flags.json === true) {
          json.secret = Buffer.from(key.secret).toString('base64');
          env.out(`${JSON.stringify(json, null, 2)}\n`);
        } else env.out(file);
        return;
      }
      const path = resolve(env.cwd, flags.out);
      await writeNew(path, file, 0o600);
      json.file = path;
      if (flags.json === true) env.out(`${JSON.stringify(json, null, 2)}\n`);
      else {
        env.out(`wrote key ${key.name} (${key.algorithm}) to ${path}\n`);
        env.out(
          `in the DP's config: "transfer": { "keys": [ ${JSON.stringify({ name: key.name, algorithm: key.algorithm, secretFile: path })} ] }\n`,
        );
      }
    });
  registerKeyRoll(keys, env);
}

/** A TTL: a whole number of seconds, at most 2^31 - 1 (RFC 2181 §8). */
function ttlSeconds(value: string): number {
  const n = /^[0-9]{1,10}$/.test(value) ? Number(value) : NaN;
  if (!(n <= 2 ** 31 - 1)) throw new InvalidArgumentError('expected a whole number 0–2147483647');
  return n;
}

/** The keys of the public-key file at `path` (relative to the working directory). */
async function readKeyFile(
  path: string,
  env: CommandEnv,
): Promise<{ path: string; keys: KeyconfData[] }> {
  const absolute = resolve(env.cwd, path);
  let content: string;
  try {
    content = await readFile(absolute, 'utf8');
  } catch (cause) {
    const why = cause instanceof Error ? cause.message : String(cause);
    throw usageError('ERR_CLI_KEY_FILE', `${absolute}: cannot read the public-key file: ${why}`);
  }
  try {
    return { path: absolute, keys: parsePublicKeyFile(content) };
  } catch (error) {
    if (error instanceof KeyFileError) {
      throw usageError(error.code, `${absolute}: ${error.message}`, error);
    }
    throw error;
  }
}

function keyJson(key: KeyconfData): KeyJson {
  return {
    kind: key.kind,
    config: Buffer.from(key.config).toString('base64url'),
    sha256: createHash('sha256').update(key.config).digest('hex'),
    notBefore: key.notBefore,
    notAfter: key.notAfter,
  };
}

function text(json: PublishedKeysJson): string {
  const time = (s: number): string => new Date(s * 1000).toISOString().replace('.000Z', 'Z');
  const rows = [['KIND', 'NOT BEFORE', 'NOT AFTER', 'OCTETS', 'SHA-256']];
  for (const k of json.keys) {
    rows.push([
      k.kind,
      time(k.notBefore),
      time(k.notAfter),
      String(Buffer.from(k.config, 'base64url').length),
      `${k.sha256.slice(0, 16)}…`,
    ]);
  }
  let out = json.keys.length > 0 ? formatTable(rows) : '';
  if (json.svcb !== null) {
    const p = json.svcb.params;
    const params = [
      p.alpn ? `alpn=${p.alpn.join(',')}` : '',
      p.port !== undefined ? `port=${p.port}` : '',
      p.ipv4hint ? `ipv4hint=${p.ipv4hint.join(',')}` : '',
      p.ipv6hint ? `ipv6hint=${p.ipv6hint.join(',')}` : '',
      p.dohpath !== undefined ? `dohpath=${p.dohpath}` : '',
      p.ohttp === true ? 'ohttp' : '',
    ].filter((s) => s !== '');
    out += `${json.svcb.name}. SVCB 1 ${json.svcb.target}. ${params.join(' ')}\n`;
  }
  return out;
}
