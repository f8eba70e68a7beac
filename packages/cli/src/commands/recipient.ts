import { resolve } from 'node:path';
import {
  CREDENTIAL_FORMATS,
  createCredentialRequest,
  createMapping,
  createMaprefRequest,
  createRemoval,
  formatAudienceKey,
  generateAudienceKey,
  generateKeyPair,
  MAX_SEALED_PER_MAPPING,
  MimiError,
  parseCsi,
  sealMsps,
  type AudienceKey,
  type CredentialFormat,
  type MspEntry,
  type SealedBox,
} from '@mimi-discovery/common';
import {
  createRegistrationClient,
  type PublishResult,
  type RegistrationClient,
} from '@mimi-discovery/authoritative';
import { Option, type Command } from 'commander';
import { apiFailure, apiUrl, readCaFile } from '../api-flags.js';
import {
  audienceKeyIdText,
  readAudienceKeyFile,
  writeAudienceKeyFile,
} from '../audience-key-file.js';
import type { CommandEnv } from '../context.js';
import { failure, parseFlag, usageError } from '../errors.js';
import { writeNew } from '../files.js';
import {
  collect,
  days,
  domainName,
  msp,
  mspUri,
  sealedMsp,
  unsigned,
  type SealedMspFlag,
} from '../flag-values.js';
import {
  addAttestationToKeyFile,
  readAttestationFile,
  readKeyFile,
  toBase64url,
  writeAttestationFile,
  writeNewKeyFile,
  type AttestedCsi,
  type KeyFile,
} from '../key-file.js';

/**
 * `recipient …`: the recipient's side of registration (design §8) against a DP's API —
 * `keygen` (a key file), `prove` (a one-time code goes to the CSI), `confirm` (the code and the
 * public key get an attestation, kept in the key file), `publish` (a signed mapping, possibly
 * listing no MSP: an "empty" mapping, R5), `mapref` (a signed MapRef request) and `remove` (a
 * signed removal, R9). Signed objects are made here, with the key that never leaves the file.
 *
 * `credential` asks the DP's prover for the attestation as an X.509 certificate or an SD-JWT
 * (docs/protocol.md, "Credentials"), on a request signed with the key: MLS credentials that a
 * verifier checks with the DNS alone (`mimi-discovery credential verify`).
 *
 * `audience-key` makes an audience key file, and `publish --seal FILE=PROVIDER[:TAGS]` seals MSP
 * entries to it (HPKE, RFC 9180; docs/protocol.md §4): every entry given for one file goes into
 * one sealed box, beside the public `--msp` entries, and the recipient's signature covers the
 * boxes. Only a sender holding the file's line opens that box (docs/recipients.md, CUJ 5–7).
 */

interface ApiFlags {
  api: string;
  ca?: string;
  json?: boolean;
}

interface KeyFlags extends ApiFlags {
  key: string;
  attestation?: string;
}

interface ProveFlags extends ApiFlags {
  csi: string;
}

interface ConfirmFlags extends KeyFlags {
  csi: string;
  code: string;
}

interface PublishFlags extends KeyFlags {
  msp: MspEntry[];
  seal: SealedMspFlag[];
  uri: Array<{ provider: string; uri: string }>;
  new?: boolean;
  seq?: number;
  ttlDays: number;
}

interface MaprefFlags extends KeyFlags {
  target?: string;
  withdraw?: boolean;
}

interface RemoveFlags extends KeyFlags {
  seq?: number;
}

interface CredentialFlags extends KeyFlags {
  format: CredentialFormat;
  out: string;
  issuerOut?: string;
}

const DAY = 86_400;

/** Adds `recipient` and its subcommands to `program`. */
export function registerRecipient(program: Command, env: CommandEnv): Command {
  const recipient = program
    .command('recipient')
    .description("a recipient's registration at a DP: key, proof of the CSI, mappings, removal");
  recipient.addHelpText(
    'after',
    `
Examples:
  $ mimi-discovery recipient keygen --out alice.key
  $ mimi-discovery recipient prove --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --csi "+44 20 7946 0018"
  $ mimi-discovery recipient confirm --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --csi "+44 20 7946 0018" --code 123456 --key alice.key
  $ mimi-discovery recipient publish --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key --msp chat.example:primary
  $ mimi-discovery recipient audience-key --out soccer.audience
  $ mimi-discovery recipient publish --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key \\
      --msp chat.example:personal --seal soccer.audience=wire.example:ctx:soccer
  $ mimi-discovery recipient remove --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key
  $ mimi-discovery recipient credential --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key --format x509 --out alice.pem`,
  );

  recipient
    .command('keygen')
    .description('create a new recipient key file (Ed25519, mode 0600)')
    .requiredOption('--out <file>', 'the key file to create (never overwritten)')
    .option('--json', 'print {file, publicKey} as JSON')
    .addHelpText('after', '\nExamples:\n  $ mimi-discovery recipient keygen --out alice.key')
    .action(async (flags: { out: string; json?: boolean }) => {
      const file = resolve(env.cwd, flags.out);
      const keyPair = generateKeyPair();
      await writeNewKeyFile(file, keyPair);
      const publicKey = toBase64url(keyPair.publicKey);
      if (flags.json === true) env.out(`${JSON.stringify({ file, publicKey }, null, 2)}\n`);
      else env.out(`wrote a new key to ${file}\npublic key ${publicKey}\n`);
    });

  recipient
    .command('audience-key')
    .description(
      'create an audience key file (X25519, mode 0600): senders given its line open the MSPs sealed to it',
    )
    .requiredOption('--out <file>', 'the audience key file to create (never overwritten)')
    .option('--json', 'print {file, kid, share} as JSON')
    .addHelpText(
      'after',
      `
Share the printed mimi-audience: line (or a QR code of it) with the senders who may see the
MSPs you seal to it: a contact card, a group invite. Whoever holds it can pass it on; to take
it back, make a new key and publish again with --seal for the new file only.

Examples:
  $ mimi-discovery recipient audience-key --out soccer.audience
  $ mimi-discovery recipient audience-key --out business.audience --json`,
    )
    .action(async (flags: { out: string; json?: boolean }) => {
      const file = resolve(env.cwd, flags.out);
      const key = await generateAudienceKey();
      await writeAudienceKeyFile(file, key);
      const kid = audienceKeyIdText(key);
      const share = formatAudienceKey(key);
      if (flags.json === true) env.out(`${JSON.stringify({ file, kid, share }, null, 2)}\n`);
      else {
        env.out(
          `wrote a new audience key to ${file}\nkey id ${kid}\n` +
            `share this line (or a QR code of it) with the senders who may open what you seal to it:\n${share}\n`,
        );
      }
    });

  apiFlags(
    recipient
      .command('prove')
      .description('ask the DP to send a one-time code to the CSI (SMS, email, or the dev outbox)')
      .requiredOption('--csi <csi>', 'the phone number or email address, as typed'),
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ mimi-discovery recipient prove --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --csi alice@example.com',
    )
    .action(async (flags: ProveFlags) => {
      const csi = parseFlag('--csi', flags.csi, parseCsi);
      const { result } = await call(flags, env, (api) => api.prove(csi));
      if (flags.json === true) env.out(`${JSON.stringify(result, null, 2)}\n`);
      else {
        env.out(
          `sent a code for ${result.csi} through ${result.channel}; it expires at ${iso(result.expiresAt)}\n`,
        );
      }
    });

  keyFlags(
    apiFlags(
      recipient
        .command('confirm')
        .description('confirm the code with the public key; saves the attestation the DP returns')
        .requiredOption('--csi <csi>', 'the CSI the code was sent to')
        .requiredOption('--code <code>', 'the one-time code'),
    ),
    'where to save the attestation (default: in the key file)',
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ mimi-discovery recipient confirm --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --csi +442079460018 --code 123456 --key alice.key',
    )
    .action(async (flags: ConfirmFlags) => {
      const csi = parseFlag('--csi', flags.csi, parseCsi);
      const keyPath = resolve(env.cwd, flags.key);
      const { keyPair } = await readKeyFile(keyPath);
      // The client checks that the attestation decodes and binds this CSI to this key.
      const { result } = await call(flags, env, (api) =>
        api.confirm({ csi, code: flags.code.trim(), key: keyPair.publicKey }),
      );
      const { attestation, encoded } = result;
      const file = flags.attestation === undefined ? keyPath : resolve(env.cwd, flags.attestation);
      if (flags.attestation === undefined)
        await addAttestationToKeyFile(keyPath, keyPair, { csi, encoded });
      else await writeAttestationFile(file, { csi, encoded });
      const report = {
        csi,
        key: toBase64url(keyPair.publicKey),
        prover: toBase64url(attestation.prover),
        nbf: attestation.nbf,
        exp: attestation.exp,
        file,
      };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        env.out(
          `attested ${csi} for key ${report.key}\nprover ${report.prover}, valid until ${iso(report.exp)}\nsaved in ${file}\n`,
        );
      }
    });

  keyFlags(
    apiFlags(
      recipient
        .command('publish')
        .description(
          'publish a signed mapping of the attested CSI to MSPs (none: an "empty" mapping)',
        )
        .option(
          '--msp <provider[:tags]>',
          'an MSP as PROVIDER[:TAG[,TAG]]; repeat for more, none for an empty mapping',
          collect(msp),
          [],
        )
        .option(
          '--seal <file=provider[:tags]>',
          'an MSP sealed to the audience key in FILE, as FILE=PROVIDER[:TAG[,TAG]]; repeatable, ' +
            `the entries for one FILE in one box, at most ${MAX_SEALED_PER_MAPPING} files`,
          collect(sealedMsp),
          [],
        )
        .option(
          '--uri <provider=uri>',
          'a URI for the MSP entries (public or sealed) of PROVIDER, as PROVIDER=URI; repeatable',
          collect(mspUri),
          [],
        )
        .option('--new', 'set the "new" bit: de-list mappings of keys attested earlier')
        .option(
          '--seq <n>',
          'sequence number, higher than any earlier of this key (default: now, in seconds)',
          unsigned,
        )
        .option('--ttl-days <days>', 'lifetime of the mapping in days', days, 30),
    ),
    'the attestation file (default: the one in the key file)',
  )
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery recipient publish --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key \\
      --msp chat.example:primary,work --msp msg.example --uri msg.example=im:alice@msg.example
  $ mimi-discovery recipient publish --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key \\
      --msp chat.example:personal,pref:1 --msp text.example:personal,pref:2 \\
      --seal work.audience=wire.example:business,pref:1
  $ mimi-discovery recipient publish --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key   # empty mapping

Tags with a meaning (docs/recipients.md): personal, business, ctx:NAME (contexts), pref:N (rank
1-999 across all your mappings, 1 first), same-msp (only for senders on that MSP).`,
    )
    .action(async (flags: PublishFlags) => {
      const { keyPair, attested } = await keyAndAttestation(flags, env);
      const { msps, sealed: toSeal } = withUris(flags.msp, flags.seal, flags.uri);
      const audiences = await audienceKeys(toSeal, env);
      const boxes: SealedBox[] = [];
      for (const { key, entries } of audiences) {
        boxes.push(
          await signedAsync('--seal', () =>
            sealMsps(attested.csi, keyPair.publicKey, entries, key),
          ),
        );
      }
      const now = env.now();
      const seq = flags.seq ?? now;
      const mapping = signed(boxes.length > 0 ? '--msp/--seal' : '--msp', () =>
        createMapping(
          {
            csi: attested.csi,
            msps,
            seq,
            iat: now,
            exp: now + flags.ttlDays * DAY,
            new: flags.new === true,
            att: attested.attestation,
            ...(boxes.length === 0 ? {} : { sealed: boxes }),
          },
          keyPair.secretKey,
        ),
      );
      const { result: response } = await call(flags, env, (api) =>
        api.publishMapping({ csi: attested.csi, mapping }),
      );
      const sealed = audiences.map(({ file, key, entries }) => ({
        file,
        kid: audienceKeyIdText(key),
        msps: entries.length,
      }));
      const report = { csi: attested.csi, seq, msps: msps.length, sealed, ...response };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const what =
          msps.length === 0 && sealed.length === 0
            ? 'an empty mapping (no MSP)'
            : msps.length === 0
              ? 'a mapping with no public MSP'
              : `a mapping to ${msps.map((m) => m.provider).join(', ')}`;
        const boxesText = sealed
          .map((s) => `, ${s.msps} MSP${s.msps === 1 ? '' : 's'} sealed to key id ${s.kid}`)
          .join('');
        env.out(
          `published ${what}${boxesText} for ${attested.csi}, seq ${seq}${placed(response)}\n`,
        );
      }
    });

  keyFlags(
    apiFlags(
      recipient
        .command('mapref')
        .description(
          'point the CSI at another zone that publishes more mappings (MAPREF), or withdraw',
        )
        .addOption(
          new Option('--target <name>', 'the domain name of the other mappings')
            .argParser(domainName)
            .conflicts('withdraw'),
        )
        .option('--withdraw', "withdraw the CSI's MAPREF records"),
    ),
    'the attestation file (default: the one in the key file)',
  )
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery recipient mapref --api https://127.0.0.1:8445 --key alice.key --target 8.1.0.0.6.4.9.7.0.2.4.4.dp.msp.example
  $ mimi-discovery recipient mapref --api https://127.0.0.1:8445 --key alice.key --withdraw`,
    )
    .action(async (flags: MaprefFlags) => {
      if (flags.target === undefined && flags.withdraw !== true) {
        throw usageError('ERR_USAGE', 'mapref needs --target NAME or --withdraw');
      }
      const { keyPair, attested } = await keyAndAttestation(flags, env);
      const target = flags.target ?? null;
      const request = signed('--target', () =>
        createMaprefRequest(
          { csi: attested.csi, target, iat: env.now(), att: attested.attestation },
          keyPair.secretKey,
        ),
      );
      const { result: response } = await call(flags, env, (api) => api.publishMapref(request));
      const report = { csi: attested.csi, target, ...response };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        const what =
          target === null ? 'withdrew the MAPREF records' : `published a MAPREF to ${target}`;
        env.out(`${what} for ${attested.csi}${placed(response)}\n`);
      }
    });

  keyFlags(
    apiFlags(
      recipient
        .command('remove')
        .description("remove this key's mappings of the attested CSI (a signed removal)")
        .option(
          '--seq <n>',
          'remove mappings up to this sequence number (default: now, in seconds)',
          unsigned,
        ),
    ),
    'the attestation file (default: the one in the key file)',
  )
    .addHelpText(
      'after',
      '\nExamples:\n  $ mimi-discovery recipient remove --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key',
    )
    .action(async (flags: RemoveFlags) => {
      const { keyPair, attested } = await keyAndAttestation(flags, env);
      const now = env.now();
      const seq = flags.seq ?? now;
      const removal = signed('--seq', () =>
        createRemoval({ csi: attested.csi, seq, iat: now }, keyPair.secretKey),
      );
      const { result: response } = await call(flags, env, (api) => api.remove(removal));
      const report = { csi: attested.csi, seq, ...response };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else env.out(`removed the mappings of ${attested.csi} up to seq ${seq}${placed(response)}\n`);
    });
  keyFlags(
    apiFlags(
      recipient
        .command('credential')
        .description(
          "get the attestation as a credential signed by the DP's prover: an X.509 certificate or an SD-JWT",
        )
        .addOption(
          new Option('--format <format>', 'the credential profile')
            .choices([...CREDENTIAL_FORMATS])
            .makeOptionMandatory(),
        )
        .requiredOption(
          '--out <file>',
          'where to write it (never overwritten): x509, the certificate then the prover certificate (PEM); sd-jwt, the SD-JWT',
        )
        .option(
          '--issuer-out <file>',
          'x509: also write the prover certificate alone here (never overwritten), for openssl verify -CAfile',
        ),
    ),
    'the attestation file (default: the one in the key file)',
  )
    .addHelpText(
      'after',
      `
Examples:
  $ mimi-discovery recipient credential --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key \\
      --format x509 --out alice.pem --issuer-out prover.pem
  $ openssl verify -CAfile prover.pem alice.pem
  $ mimi-discovery recipient credential --api https://127.0.0.1:8445 --ca ./net/ca/ca.pem --key alice.key \\
      --format sd-jwt --out alice.sd-jwt`,
    )
    .action(async (flags: CredentialFlags) => {
      if (flags.issuerOut !== undefined && flags.format !== 'x509') {
        throw usageError('ERR_USAGE', '--issuer-out is for --format x509 only');
      }
      const out = resolve(env.cwd, flags.out);
      const issuerOut =
        flags.issuerOut === undefined ? undefined : resolve(env.cwd, flags.issuerOut);
      if (issuerOut === out) throw usageError('ERR_USAGE', '--issuer-out must differ from --out');
      const { keyPair, attested } = await keyAndAttestation(flags, env);
      const request = signed('--format', () =>
        createCredentialRequest(
          { csi: attested.csi, att: attested.attestation, format: flags.format, iat: env.now() },
          keyPair.secretKey,
        ),
      );
      const { result } = await call(flags, env, (api) =>
        api.credential({ csi: attested.csi, request }),
      );
      if (result.format !== flags.format) {
        throw failure(
          'ERR_CLI_API_RESPONSE',
          `the DP answered a ${result.format} credential to a request for ${flags.format}`,
        );
      }
      const text =
        result.format === 'x509'
          ? `${result.credential.trimEnd()}\n${(result.issuer ?? '').trimEnd()}\n`
          : `${result.credential}\n`;
      await writeNew(out, text, 0o644);
      if (issuerOut !== undefined)
        await writeNew(issuerOut, `${(result.issuer ?? '').trimEnd()}\n`, 0o644);
      const report = {
        csi: attested.csi,
        format: result.format,
        file: out,
        ...(issuerOut === undefined ? {} : { issuerFile: issuerOut }),
        nbf: attested.attestation.nbf,
        exp: attested.attestation.exp,
      };
      if (flags.json === true) env.out(`${JSON.stringify(report, null, 2)}\n`);
      else {
        env.out(
          `wrote the ${result.format} credential of ${attested.csi} to ${out}` +
            `${issuerOut === undefined ? '' : `, the prover certificate to ${issuerOut}`}` +
            `\nvalid ${iso(report.nbf)} to ${iso(report.exp)}\n`,
        );
      }
    });

  return recipient;
}

function apiFlags(command: Command): Command {
  return command
    .requiredOption('--api <url>', "the DP's registration API (https://host:port)")
    .option('--ca <file>', 'a CA certificate (PEM) to trust, e.g. a local CA')
    .option('--json', 'print the result as JSON');
}

function keyFlags(command: Command, attestationHelp: string): Command {
  return command
    .requiredOption('--key <file>', 'the recipient key file (from recipient keygen)')
    .option('--attestation <file>', attestationHelp);
}

/**
 * Runs `action` with a client of the API of `--api` (trusting `--ca`), and reports its errors as
 * the command's (api-flags.ts).
 */
async function call<T>(
  flags: ApiFlags,
  env: CommandEnv,
  action: (api: RegistrationClient) => Promise<T>,
): Promise<T> {
  const url = apiUrl('--api', flags.api);
  const ca =
    flags.ca === undefined
      ? undefined
      : await readCaFile('--ca', flags.ca, resolve(env.cwd, flags.ca));
  const api = createRegistrationClient({ url: url.href, ...(ca === undefined ? {} : { ca }) });
  try {
    return await action(api);
  } catch (error) {
    throw apiFailure(error, url, {
      unreachable: 'ERR_CLI_API_UNREACHABLE',
      response: 'ERR_CLI_API_RESPONSE',
    });
  } finally {
    await api.close();
  }
}

async function keyAndAttestation(
  flags: KeyFlags,
  env: CommandEnv,
): Promise<{ keyPair: KeyFile['keyPair']; attested: AttestedCsi }> {
  const keyPath = resolve(env.cwd, flags.key);
  const key = await readKeyFile(keyPath);
  if (flags.attestation !== undefined) {
    return {
      keyPair: key.keyPair,
      attested: await readAttestationFile(resolve(env.cwd, flags.attestation), key.keyPair),
    };
  }
  if (key.attested === undefined) {
    throw usageError(
      'ERR_CLI_KEY_FILE',
      `${keyPath} holds no attestation: run 'mimi-discovery recipient confirm' first, or give --attestation`,
    );
  }
  return { keyPair: key.keyPair, attested: key.attested };
}

/**
 * The public and sealed MSPs with the URIs given for their providers; a URI for an MSP listed
 * neither way is a usage error.
 */
function withUris(
  msps: readonly MspEntry[],
  sealed: readonly SealedMspFlag[],
  uris: ReadonlyArray<{ provider: string; uri: string }>,
): { msps: MspEntry[]; sealed: SealedMspFlag[] } {
  for (const { provider } of uris) {
    if (
      !msps.some((m) => m.provider === provider) &&
      !sealed.some((s) => s.entry.provider === provider)
    ) {
      throw usageError(
        'ERR_USAGE',
        `--uri ${provider}=…: ${provider} is not one of the --msp or --seal providers`,
      );
    }
  }
  const withUri = (m: MspEntry): MspEntry => {
    const uri = uris.find((u) => u.provider === m.provider)?.uri;
    return uri === undefined ? m : { ...m, uri };
  };
  return {
    msps: msps.map(withUri),
    sealed: sealed.map((s) => ({ file: s.file, entry: withUri(s.entry) })),
  };
}

/** One sealed box to make: the audience key of a file and the entries given for it. */
interface Audience {
  /** The file as resolved. */
  readonly file: string;
  readonly key: AudienceKey;
  readonly entries: MspEntry[];
}

/**
 * Groups the `--seal` entries by audience key, in the order the files were first given: one box
 * per key. Two names of one file, or two files holding the same key, make one box, since a
 * second box for the same key id would only tell a sender without it that one audience has two.
 */
async function audienceKeys(
  sealed: readonly SealedMspFlag[],
  env: CommandEnv,
): Promise<Audience[]> {
  const audiences: Audience[] = [];
  for (const { file: given, entry } of sealed) {
    const file = resolve(env.cwd, given);
    const key = await readAudienceKeyFile('--seal', given, file);
    const kid = audienceKeyIdText(key);
    const same = audiences.find((a) => audienceKeyIdText(a.key) === kid);
    if (same !== undefined) same.entries.push(entry);
    else audiences.push({ file, key, entries: [entry] });
  }
  if (audiences.length > MAX_SEALED_PER_MAPPING) {
    throw usageError(
      'ERR_USAGE',
      `--seal: ${audiences.length} audience keys, a mapping holds at most ${MAX_SEALED_PER_MAPPING} sealed boxes`,
    );
  }
  return audiences;
}

/** Runs a `create…` of a signed object; a field it refuses is a usage error (exit 1). */
function signed<T>(flag: string, create: () => T): T {
  try {
    return create();
  } catch (error) {
    if (error instanceof MimiError)
      throw usageError(error.code, `${flag}: ${error.message}`, error);
    throw error;
  }
}

/** {@link signed} for an asynchronous step (sealing: HPKE is asynchronous). */
async function signedAsync<T>(flag: string, create: () => Promise<T>): Promise<T> {
  try {
    return await create();
  } catch (error) {
    if (error instanceof MimiError)
      throw usageError(error.code, `${flag}: ${error.message}`, error);
    throw error;
  }
}

function placed(response: PublishResult): string {
  return ` (zone ${response.zone}, serial ${response.serial})`;
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}
