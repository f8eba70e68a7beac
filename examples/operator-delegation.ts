/**
 * An operator script: set up a root directory and a DP, delegate the range `+44` from the root
 * to the DP, list the root's delegations, export the trust anchor and root hints that resolvers
 * start from, check the delegation through a resolver built from those files, then undelegate.
 * It is what `mimi-discovery init`, `delegate`, `delegations`, `trust-anchor`, `hints` and
 * `undelegate` do, through the packages' API, while both servers run.
 *
 * `delegate` writes NS, DS (the child's key: every delegation is signed, design §5), A glue and
 * the `_dns` SVCB of the child's DoH endpoint into the root zone, re-signs and bumps the serial;
 * the running root answers with it from its next query.
 *
 * Run: `npx tsc -b && npx vite-node examples/operator-delegation.ts`
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  formatBindTrustAnchors,
  formatRecord,
  formatTrustAnchor,
  parseRange,
} from '@mimi-discovery/common';
import {
  delegate,
  listDelegations,
  undelegate,
  type RunningDp,
} from '@mimi-discovery/authoritative';
import { formatRootHints, rootTrustAnchor } from '@mimi-discovery/root';
import { createResolver, readResolverFiles } from '@mimi-discovery/resolver';
import {
  APEX,
  createLoopbackDir,
  delegationTo,
  initServer,
  isMain,
  serveServer,
} from './loopback-network.js';

/** The range the root delegates to the DP. */
export const RANGE = '+44';

/** Runs the example, writing what it shows through `log`, one line per call. */
export async function main(log: (line: string) => void): Promise<void> {
  const files = await createLoopbackDir('mimi-operator');
  const running: RunningDp[] = [];
  try {
    const zone = parseRange(RANGE, APEX).zone;

    // `mimi-discovery init root` and `init dp --range +44`: stores, zones, zone keys.
    const rootDir = join(files.dir, 'root');
    const dpDir = join(files.dir, 'dp44');
    await initServer(rootDir, [APEX]);
    const ds = (await initServer(dpDir, [zone])).get(zone);
    if (ds === undefined) throw new Error(`no DS for ${zone}`);
    log(`DP zone ${zone}, DS for the parent:`);
    log(`  ${formatRecord({ name: zone, type: 'DS', class: 'IN', ttl: 3600, data: ds })}`);

    // `mimi-discovery serve` for both.
    const root = await serveServer('root', rootDir, files.tls);
    running.push(root);
    const dp = await serveServer('dp', dpDir, files.tls, { outbox: join(dpDir, 'outbox.jsonl') });
    running.push(dp);

    // `mimi-discovery delegate --range +44 --ns-from … --ds-from …`
    const { serial } = await delegate(root.store, APEX, delegationTo(zone, dp, ds));
    log(`delegated ${RANGE} (${zone}) from ${APEX}, root SOA serial ${serial}`);

    // `mimi-discovery delegations`
    log('delegations of the root:');
    for (const d of listDelegations(root.store, APEX)) {
      for (const ns of d.nameservers) {
        const doh = ns.doh === undefined ? '' : ` doh port ${ns.doh.port}`;
        log(`  ${d.zone}  ${ns.name} ${ns.addresses.join(',')}${doh}  DS ${d.ds[0]?.keyTag}`);
      }
    }

    // `mimi-discovery trust-anchor` (Unbound's format, and BIND's for `delv -a`) and `hints`.
    const anchor = rootTrustAnchor(root.store, APEX);
    const anchorFile = join(files.dir, 'root.key');
    const hintsFile = join(files.dir, 'root-hints.json');
    const caFile = files.caFile;
    writeFileSync(anchorFile, formatTrustAnchor(anchor));
    writeFileSync(join(files.dir, 'root.bind-anchor'), formatBindTrustAnchors(anchor));
    const doh = root.dns?.doh;
    if (doh === undefined) throw new Error('the root serves no DoH');
    writeFileSync(
      hintsFile,
      formatRootHints({
        apex: APEX,
        servers: [{ name: `ns1.${APEX}`, addresses: ['127.0.0.1'], doh: doh.url }],
      }),
    );
    log('trust anchor (root.key):');
    for (const line of formatTrustAnchor(anchor).trimEnd().split('\n')) {
      if (!line.startsWith(';')) log(`  ${line}`);
    }

    // A resolver built only from the files an operator hands out.
    const check = async (when: string): Promise<void> => {
      const config = await readResolverFiles({
        rootHints: hintsFile,
        trustAnchor: anchorFile,
        ca: caFile,
      });
      const resolver = createResolver(config);
      try {
        const soa = await resolver.resolve(zone, 'SOA');
        const owner = soa.answers.find((rr) => rr.type === 'SOA')?.name ?? '-';
        log(`${when}: SOA ${zone} → ${soa.rcode} ${soa.status}, answer owner ${owner}`);
      } finally {
        await resolver.close();
      }
    };
    await check('resolver after delegate');

    // `mimi-discovery undelegate --range +44`
    const removed = await undelegate(root.store, APEX, zone);
    log(`undelegated ${RANGE}, root SOA serial ${removed.serial}`);
    log(`delegations of the root: ${listDelegations(root.store, APEX).length}`);
    await check('resolver after undelegate');
  } finally {
    await Promise.allSettled(running.reverse().map((server) => server.close()));
    files.remove();
  }
}

if (isMain(import.meta.url)) {
  main((line) => console.log(line)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  });
}
