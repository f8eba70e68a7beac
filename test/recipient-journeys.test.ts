import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildQuery,
  csiToName,
  decodeMapping,
  parseAudienceKey,
  parseCsi,
  queryUdp,
  silentLogger,
  type AudienceKey,
  type Csi,
} from '@mimi-discovery/common';
import {
  createResolver,
  startJsonApi,
  type DiscoverOptions,
  type DiscoveryResult,
  type JsonApi,
  type Resolver,
} from '@mimi-discovery/resolver';
import { runCli } from '@mimi-discovery/cli';
import { resolverConfigFor, writeLoopbackTls } from '../examples/loopback-network.js';
import { buildNetwork, type Network } from './helpers/network.js';
import { apiOf, outboxCode } from './helpers/registration.js';
import { onPath, runTool } from './helpers/tools.js';

// Issue 16, "Recipients in control": the recipient journeys of the MIMI discovery requirements
// (Appendix B, CUJ 1–7), each set up as a recipient would — with the command line, against the
// registration API of the +44 DP of a real network (root, +44 DP, email DP, on LMDB) — and
// each checked from three senders, each with its own real resolver:
//
//   - a sender on chat.example: its resolver is configured with `msp: 'chat.example'`;
//   - a sender on text.example: `msp: 'text.example'`;
//   - a sender whose resolver claims no MSP identity.
//
// Senders differ further by the context they name (`discover(csi, { context })`) and by the
// audience keys the recipient gave them (`audienceKeys`, opened in the sender's process). The
// walk-through of each journey for people is docs/recipients.md; what a sealed mapping reveals
// is docs/privacy.md.

const CSIS = {
  cuj1: '+44 20 7946 0101',
  cuj2: '+44 20 7946 0102',
  cuj3: '+44 20 7946 0103',
  cuj4: '+44 20 7946 0104',
  cuj5: '+44 20 7946 0105',
  cuj6: '+44 20 7946 0106',
  cuj7: '+44 20 7946 0107',
} as const;

let net: Network;
let work: string;
/** One resolver per sender, each a real resolver walking from the root with the trust anchor. */
let chatSender: Resolver;
let textSender: Resolver;
let plainSender: Resolver;

beforeAll(async () => {
  net = await buildNetwork();
  work = mkdtempSync(join(tmpdir(), 'mimi-journeys-'));
  writeFileSync(join(work, 'net-ca.pem'), net.caPem);
  const config = resolverConfigFor(net.root.provider, net.caPem);
  chatSender = createResolver({ ...config, msp: 'chat.example' }, { log: silentLogger });
  textSender = createResolver({ ...config, msp: 'text.example' }, { log: silentLogger });
  plainSender = createResolver(config, { log: silentLogger });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([chatSender?.close(), textSender?.close(), plainSender?.close()]);
  await net?.close();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// The recipient's side: the command line, as docs/recipients.md shows it.

/** Runs `mimi-discovery argv` in the recipient's directory; expects exit 0, returns stdout. */
async function cli(argv: readonly string[]): Promise<string> {
  const result = await runCli(argv, { cwd: work, env: {}, log: silentLogger });
  if (result.exitCode !== 0) {
    throw new Error(`mimi-discovery ${argv.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  }
  return result.stdout;
}

function api(): string[] {
  return ['--api', apiOf(net.phone).url, '--ca', 'net-ca.pem'];
}

/** `recipient keygen`, `prove`, `confirm`: a key file attested for `csi`. */
async function recipientKey(file: string, csi: string): Promise<void> {
  await cli(['recipient', 'keygen', '--out', file]);
  await cli(['recipient', 'prove', ...api(), '--csi', csi]);
  const outbox = apiOf(net.phone).outbox;
  if (outbox === undefined) throw new Error('the +44 DP has no outbox');
  const code = await outboxCode(outbox, parseCsi(csi));
  await cli(['recipient', 'confirm', ...api(), '--csi', csi, '--code', code, '--key', file]);
}

/** `recipient publish --key file …flags`. */
async function publish(file: string, flags: readonly string[]): Promise<string> {
  return cli(['recipient', 'publish', ...api(), '--key', file, ...flags]);
}

/** `recipient audience-key --out file`, and the key as a sender given the file reads it. */
async function audienceKey(file: string): Promise<AudienceKey> {
  await cli(['recipient', 'audience-key', '--out', file]);
  return parseAudienceKey(readFileSync(join(work, file), 'utf8'));
}

// ---------------------------------------------------------------------------------------------
// The senders' side.

/** What a sender is told: the providers of `msps`, in the recipient's order (use the first). */
async function sees(
  sender: Resolver,
  csi: string,
  options: DiscoverOptions = {},
): Promise<string[]> {
  const result = await sender.discover(csi, options);
  expect(result.status, JSON.stringify(result.error)).toBe('found');
  return result.msps.map((m) => m.provider);
}

function kidOf(key: AudienceKey): string {
  return Buffer.from(key.kid).toString('base64url');
}

/** The sealed boxes of a result left unopened: those whose key id was not opened. */
function unopened(result: DiscoveryResult): string[] {
  return result.mappings.flatMap((m) => {
    const opened = new Set((m.opened ?? []).map((o) => o.audience));
    return (m.sealed ?? []).map((b) => b.kid).filter((kid) => !opened.has(kid));
  });
}

describe('the recipient journeys (CUJ 1–7), each seen by three senders', () => {
  it('CUJ 1, only one MSP: every sender is told that MSP and no other', async () => {
    await recipientKey('cuj1.key', CSIS.cuj1);
    await publish('cuj1.key', ['--msp', 'chat.example']);

    expect(await sees(chatSender, CSIS.cuj1)).toEqual(['chat.example']);
    expect(await sees(textSender, CSIS.cuj1)).toEqual(['chat.example']);
    // An entry with no context is for every context.
    expect(await sees(plainSender, CSIS.cuj1, { context: 'business' })).toEqual(['chat.example']);
  });

  it('CUJ 2, the same app as the sender: a same-msp entry reaches only a sender on that MSP', async () => {
    await recipientKey('cuj2.key', CSIS.cuj2);
    await publish('cuj2.key', ['--msp', 'chat.example:same-msp', '--msp', 'text.example:same-msp']);

    expect(await sees(chatSender, CSIS.cuj2)).toEqual(['chat.example']);
    expect(await sees(textSender, CSIS.cuj2)).toEqual(['text.example']);
    // Nobody vouches for the MSP of a sender whose resolver claims none: reachable (found),
    // but by no entry this sender may use.
    const plain = await plainSender.discover(CSIS.cuj2);
    expect(plain).toMatchObject({ status: 'found', msps: [] });
    // What a sender may not use is not handed out in the mappings either.
    expect(plain.mappings.flatMap((m) => m.msps)).toEqual([]);
  });

  it('CUJ 3, no random pick among ten mappings: every sender is told the same first MSP', async () => {
    // Ten mappings, from ten keys of the recipient (one per app or device), published in an
    // order that is not the recipient's: pref:1 is the seventh published.
    const prefs = [4, 9, 2, 10, 6, 8, 1, 5, 3, 7];
    for (const [i, pref] of prefs.entries()) {
      await recipientKey(`cuj3-${i}.key`, CSIS.cuj3);
      await publish(`cuj3-${i}.key`, ['--msp', `msp${pref}.example:pref:${pref}`]);
    }
    const order = Array.from({ length: 10 }, (_, i) => `msp${i + 1}.example`);

    const chat = await chatSender.discover(CSIS.cuj3);
    expect(chat.mappings).toHaveLength(10);
    expect(chat.msps.map((m) => m.provider)).toEqual(order);
    expect(chat.msps.map((m) => m.pref)).toEqual(order.map((_, i) => i + 1));
    // The mappings themselves come in the recipient's order too.
    expect(chat.mappings.map((m) => m.msps[0]?.provider)).toEqual(order);
    expect(await sees(textSender, CSIS.cuj3)).toEqual(order);
    expect(await sees(plainSender, CSIS.cuj3, { context: 'personal' })).toEqual(order);
    // Asked again, from the cache and after a flush: the same order.
    expect(await sees(plainSender, CSIS.cuj3)).toEqual(order);
    plainSender.flushCache();
    expect(await sees(plainSender, CSIS.cuj3)).toEqual(order);
  });

  it('CUJ 4, no broadcast to every app: a sender is told one MSP to use first, never the others of other contexts', async () => {
    await recipientKey('cuj4.key', CSIS.cuj4);
    await publish('cuj4.key', [
      '--msp',
      'chat.example:pref:1',
      '--msp',
      'text.example:ctx:family,pref:2',
      '--msp',
      'wire.example:ctx:club,pref:3',
    ]);

    // A sender naming no context sees every entry, ranked: it uses msps[0] and nothing else.
    const all = await chatSender.discover(CSIS.cuj4);
    expect(all.msps[0]).toMatchObject({ provider: 'chat.example', pref: 1, contexts: [] });
    expect(all.msps.map((m) => m.provider)).toEqual([
      'chat.example',
      'text.example',
      'wire.example',
    ]);
    // A personal contact is told exactly one MSP: there is nothing to broadcast to.
    expect(await sees(textSender, CSIS.cuj4, { context: 'personal' })).toEqual(['chat.example']);
    // Family is told the recipient's first choice, and the family MSP after it; never the club's.
    expect(await sees(plainSender, CSIS.cuj4, { context: 'ctx:family' })).toEqual([
      'chat.example',
      'text.example',
    ]);
  });

  it('CUJ 5, per-sender choice: two senders given two audience keys are each told their own MSP', async () => {
    await recipientKey('cuj5.key', CSIS.cuj5);
    const boss = await audienceKey('cuj5-boss.audience');
    const friend = await audienceKey('cuj5-friend.audience');
    await publish('cuj5.key', [
      '--msp',
      'chat.example:pref:5',
      '--seal',
      'cuj5-boss.audience=wire.example:pref:1',
      '--seal',
      'cuj5-friend.audience=text.example:pref:1',
      '--uri',
      'text.example=im:alice@text.example',
    ]);

    const asBoss = await chatSender.discover(CSIS.cuj5, { audienceKeys: [boss] });
    expect(asBoss.msps.map((m) => [m.provider, m.audience])).toEqual([
      ['wire.example', kidOf(boss)],
      ['chat.example', undefined],
    ]);
    expect(unopened(asBoss)).toEqual([kidOf(friend)]);

    const asFriend = await textSender.discover(CSIS.cuj5, { audienceKeys: [friend] });
    expect(asFriend.msps[0]).toMatchObject({
      provider: 'text.example',
      uri: 'im:alice@text.example',
      audience: kidOf(friend),
    });
    expect(asFriend.msps.map((m) => m.provider)).toEqual(['text.example', 'chat.example']);

    // Without a key: the public entry, and two boxes it cannot open.
    const stranger = await plainSender.discover(CSIS.cuj5);
    expect(stranger.msps.map((m) => m.provider)).toEqual(['chat.example']);
    expect(unopened(stranger).sort()).toEqual([kidOf(boss), kidOf(friend)].sort());
  });

  it('CUJ 6, a closed group: the soccer parents see Wire, nobody else learns more than that a box exists; keys rotate', async () => {
    await recipientKey('cuj6.key', CSIS.cuj6);
    const soccer = await audienceKey('soccer.audience');
    await publish('cuj6.key', [
      '--seq',
      '1',
      '--msp',
      'chat.example',
      '--seal',
      'soccer.audience=wire.example:ctx:soccer,pref:1',
    ]);

    // A parent, on chat.example, who scanned the group's QR code: the command line, through the
    // JSON API of the chat.example resolver, opens the box in the parent's process.
    const tls = await writeLoopbackTls(join(work, 'resolver-tls'));
    const received: unknown[] = [];
    const front: JsonApi = await startJsonApi(
      { port: 0, cert: readFileSync(tls.tls.cert, 'utf8'), key: readFileSync(tls.tls.key, 'utf8') },
      {
        discover: (input: string, options?: DiscoverOptions) => {
          received.push(options);
          return chatSender.discover(input, options);
        },
        discoverMany: (inputs: readonly string[], options?: DiscoverOptions) => {
          received.push(options);
          return chatSender.discoverMany(inputs, options);
        },
      },
      { log: silentLogger },
    );
    try {
      const lookup = ['lookup', CSIS.cuj6, '--resolver', front.url, '--ca', tls.caFile];
      const parent = await cli([...lookup, '--audience-key', 'soccer.audience']);
      expect(parent).toContain(
        `  1. wire.example  contexts: ctx:soccer  tags: ctx:soccer, pref:1  from: sealed ${kidOf(soccer)}\n`,
      );
      expect(parent).toMatch(/\n {2}2\. chat\.example {2}contexts: any {2}from: zone 4\.4\.e164/);
      expect(parent).not.toContain('not opened');
      // The key never left the parent's process: the resolver was asked without it.
      expect(received.length).toBeGreaterThan(0);
      for (const options of received) {
        expect(JSON.stringify(options ?? {})).not.toContain('audience');
      }
      const outsider = await cli(lookup);
      expect(outsider).toMatch(/\n {2}1\. chat\.example {2}contexts: any {2}from: zone /);
      expect(outsider).toContain('  1 sealed box not opened: no audience key for it\n');
      expect(outsider).not.toContain('wire.example');
    } finally {
      await front.close();
    }

    // Another parent, on text.example, in the soccer context.
    expect(
      await sees(textSender, CSIS.cuj6, { context: 'ctx:soccer', audienceKeys: [soccer] }),
    ).toEqual(['wire.example', 'chat.example']);

    // A sender without the key: the public entry, the box as it was served, and nothing of it.
    const stranger = await plainSender.discover(CSIS.cuj6);
    expect(stranger.msps.map((m) => m.provider)).toEqual(['chat.example']);
    expect(stranger.mappings[0]?.sealed?.map((b) => b.kid)).toEqual([kidOf(soccer)]);
    expect(stranger.mappings[0]?.opened).toBeUndefined();
    const told = JSON.stringify(stranger);
    for (const secret of ['wire.example', 'soccer', 'pref:1']) expect(told).not.toContain(secret);

    // Rotation: a new key, the mapping published again with a box for it only. A holder of the
    // old key opens nothing any more; a holder of the new one sees Wire.
    const soccer2 = await audienceKey('soccer-2026.audience');
    await publish('cuj6.key', [
      '--seq',
      '2',
      '--msp',
      'chat.example',
      '--seal',
      'soccer-2026.audience=wire.example:ctx:soccer,pref:1',
    ]);
    textSender.flushCache();
    const old = await textSender.discover(CSIS.cuj6, { audienceKeys: [soccer] });
    expect(old.msps.map((m) => m.provider)).toEqual(['chat.example']);
    expect(unopened(old)).toEqual([kidOf(soccer2)]);
    expect(await sees(textSender, CSIS.cuj6, { audienceKeys: [soccer2] })).toEqual([
      'wire.example',
      'chat.example',
    ]);
  });

  it('CUJ 6 over plain DNS: dig of the MAP shows no MSP name or tag of the sealed entries', async () => {
    const name = csiToName(parseCsi(CSIS.cuj6) as Csi);
    let rdata: Buffer[];
    if (onPath('dig')) {
      const { status, output } = await runTool('dig', [
        '@127.0.0.1',
        '-p',
        String(net.phone.udp.port),
        '+norecurse',
        '+tries=1',
        '+time=5',
        '+short',
        name,
        'TYPE65400',
      ]);
      expect(status, output).toBe(0);
      rdata = output
        .split('\n')
        .filter((line) => line.startsWith('\\#'))
        .map((line) => Buffer.from(line.trim().split(/\s+/).slice(2).join(''), 'hex'));
    } else {
      console.warn('dig not installed (Debian package bind9-dnsutils): asking with our DNS client');
      const response = await queryUdp(net.phone.udp, buildQuery(name, 'MAP'));
      rdata = response.answers.flatMap((rr) => (rr.type === 'MAP' ? [Buffer.from(rr.data)] : []));
    }
    expect(rdata).toHaveLength(1);
    const [bytes] = rdata as [Buffer];
    const clear = bytes.toString('latin1');
    // The public entry is there in clear (so this check can fail) ...
    expect(clear).toContain('chat.example');
    // ... and of the sealed one, neither the MSP nor a tag.
    for (const secret of ['wire.example', 'wire', 'ctx:soccer', 'soccer', 'pref:1']) {
      expect(clear).not.toContain(secret);
    }
    const mapping = decodeMapping(bytes);
    expect(mapping.msps).toEqual([{ provider: 'chat.example', tags: [] }]);
    expect(mapping.sealed).toHaveLength(1);
  });

  it('CUJ 7, business contacts get Wire, not chat: the business and personal contexts', async () => {
    // Two keys of the recipient: a personal phone and a work laptop, each with its mapping.
    await recipientKey('cuj7-phone.key', CSIS.cuj7);
    await publish('cuj7-phone.key', ['--msp', 'chat.example:personal']);
    await recipientKey('cuj7-laptop.key', CSIS.cuj7);
    await publish('cuj7-laptop.key', ['--msp', 'wire.example:business,pref:1']);

    expect(await sees(textSender, CSIS.cuj7, { context: 'business' })).toEqual(['wire.example']);
    expect(await sees(chatSender, CSIS.cuj7, { context: 'personal' })).toEqual(['chat.example']);
    // No context: both, the recipient's ranked entry first.
    expect(await sees(plainSender, CSIS.cuj7)).toEqual(['wire.example', 'chat.example']);
    // The business sender is not handed the personal mapping's entry at all.
    const business = await textSender.discover(CSIS.cuj7, { context: 'business' });
    expect(business.mappings.flatMap((m) => m.msps.map((e) => e.provider))).toEqual([
      'wire.example',
    ]);
  });
});
