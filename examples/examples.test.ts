import { describe, expect, it } from 'vitest';
import { ADDRESS_BOOK, main as contactSync } from './contact-sync.js';
import { CONTACT_BOOK, main as obliviousSync } from './oblivious-sync.js';
import { main as operatorDelegation } from './operator-delegation.js';
import { main as recipientApp } from './recipient-app.js';

/** Runs an example's `main` and returns what it printed, one entry per line. */
async function run(main: (log: (line: string) => void) => Promise<void>): Promise<string[]> {
  const lines: string[] = [];
  await main((line) => lines.push(line));
  return lines;
}

/** The status column of the contact table row that starts with `contact`. */
function statusOf(lines: readonly string[], contact: string): string | undefined {
  const header = lines.find((line) => line.startsWith('contact '));
  const row = lines.find((line) => line.startsWith(`${contact}  `));
  if (header === undefined || row === undefined) return undefined;
  return row.slice(header.indexOf(' status ') + 1).split(' ')[0];
}

describe('examples', () => {
  it('contact-sync: finds registered contacts, reports the opted-out one as empty and the rest as none', async () => {
    const lines = await run(contactSync);
    expect(lines).toContain(
      'registered 3 recipients with the DP (4.4.e164.mimi.arpa, example.com.email.mimi.arpa)',
    );
    const statuses = ADDRESS_BOOK.map((contact) => statusOf(lines, contact));
    expect(statuses).toEqual(['found', 'found', 'empty', 'none', 'none', 'error']);
    const alice = lines.find((line) => line.startsWith('Alice@Example.COM'));
    expect(alice).toContain('mailto:alice@example.com');
    // Ranked in the recipient's order (pref:1 first), not in the order published.
    expect(alice).toContain('msg.example [personal, pref:1]; chat.example [business, pref:2]');
    expect(lines.find((line) => line.startsWith('+44 12 '))).toContain('reason: invalid-csi');
  });

  it('recipient-app: a published mapping is found, and after removal and the TTL it is none', async () => {
    const lines = await run(recipientApp);
    for (const step of [
      '/v1/prove → 202',
      '/v1/confirm → 200',
      '/v1/mappings → 201',
      '/v1/removals → 200',
    ]) {
      expect(lines.some((line) => line.endsWith(step))).toBe(true);
    }
    expect(lines.find((line) => line.startsWith('resolver: '))).toMatch(
      /^resolver: tel:\+442079460018 found: chat\.example \[primary\] \(zone 4\.4\.e164\.mimi\.arpa\)/,
    );
    expect(lines.find((line) => line.startsWith('resolver, from its cache: '))).toContain(' found');
    expect(lines.at(-1)).toMatch(/^resolver, \d+s later: tel:\+442079460018 none/);
  });

  it('operator-delegation: the resolver reaches the DP only while the range is delegated', async () => {
    const lines = await run(operatorDelegation);
    expect(lines).toContainEqual(
      expect.stringMatching(
        /^ {2}4\.4\.e164\.mimi\.arpa {2}ns1\.4\.4\.e164\.mimi\.arpa 127\.0\.0\.1 doh port \d+ {2}DS \d+$/,
      ),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(/^ {2}mimi\.arpa\. 3600 IN DS \d+ 15 2 [0-9a-f]{64}$/),
    );
    expect(lines).toContain(
      'resolver after delegate: SOA 4.4.e164.mimi.arpa → NOERROR secure, answer owner 4.4.e164.mimi.arpa',
    );
    expect(lines).toContain('delegations of the root: 0');
    expect(lines.at(-1)).toBe(
      'resolver after undelegate: SOA 4.4.e164.mimi.arpa → NXDOMAIN secure, answer owner -',
    );
  });

  it('oblivious-sync: syncs through the relay with one token per request, and the relay keeps no CSI', async () => {
    const lines = await run(obliviousSync);
    const statuses = CONTACT_BOOK.map((contact) => statusOf(lines, contact));
    expect(statuses).toEqual([
      'found',
      'found',
      'none',
      'none',
      'empty',
      'none',
      'none',
      'none',
      'none',
      'none',
    ]);
    expect(lines.find((line) => line.startsWith('alice@chat.example '))).toContain(
      'chat.example [work]',
    );
    // 10 CSIs at 4 a token: three requests, three tokens spent, none twice.
    expect(lines).toContain(
      'tokens spent: 3 (10 CSIs, one token per request of at most 4: 3 requests)',
    );
    const issued = lines.find((line) => line.startsWith('tokens the issuer signed for sender1: '));
    expect(Number(issued?.split(': ')[1])).toBeGreaterThanOrEqual(3);
    // The relay logged the key fetch and the encapsulated requests: address, route, octets,
    // status; no line names a CSI, as typed or canonical.
    const start = lines.indexOf("the relay's query log:");
    const relayLines = lines.slice(start + 1).filter((line) => line.startsWith('  '));
    expect(relayLines.filter((line) => / POST \/ohttp\/resolver .* → 200$/.test(line)).length).toBe(
      4,
    );
    expect(relayLines.some((line) => / GET \/ohttp\/resolver .* → 200$/.test(line))).toBe(true);
    for (const line of relayLines) {
      expect(line).not.toMatch(/7946|442079|@chat\.example|mailto|tel:/);
    }
    expect(lines.at(-1)).toBe('same results as a direct lookup: yes');
  });
});
