import {
  createAttestation,
  createMapping,
  encodeMapping,
  keyPairFromSeed,
  record,
  verifyRRset,
  type RecordOf,
  type ResourceRecord,
} from '@mimi-discovery/common';
import type { DiscoveryStore, RRsetChange } from '../src/index.js';
import { NUMBER, ORIGIN, PROVER_SEED, T0 } from './store-battery.js';

// Shared by the expiry tests: signed mappings for the CSI of NUMBER with a chosen expiry, as the
// MAP records a registrar would have stored, and a check of an RRset's RRSIG against the zone.

/** The canonical CSI whose name is NUMBER. */
export const CSI = 'tel:+442079460018';

/** What makes one mapping: the recipient key's seed octet and the two expiries. */
export interface MappingSpec {
  /** Fills the recipient's 32-octet seed; distinct per mapping of one RRset. */
  readonly key: number;
  /** The mapping's own `exp`. */
  readonly exp: number;
  /** The attestation's `exp`; default a year after the mapping's. */
  readonly attExp?: number;
  /** Default {@link CSI}. */
  readonly csi?: string;
}

/** The MAP RDATA of a mapping (for {@link CSI} by default) attested by the DP's prover. */
export function mappingRdata(spec: MappingSpec): Uint8Array {
  const recipient = new Uint8Array(32).fill(spec.key);
  const csi = spec.csi ?? CSI;
  const att = createAttestation(
    {
      csi,
      key: keyPairFromSeed(recipient).publicKey,
      nbf: T0 - 60,
      exp: spec.attExp ?? spec.exp + 365 * 86_400,
    },
    PROVER_SEED,
  );
  const mapping = createMapping(
    {
      csi,
      msps: [{ provider: `msp${spec.key}.example`, tags: ['personal'] }],
      seq: 1,
      iat: T0 - 60,
      exp: spec.exp,
      new: false,
      att,
    },
    recipient,
  );
  return encodeMapping(mapping);
}

/** MAP records for `specs` at `name`, TTL `ttl`. */
export function mapRecords(
  specs: readonly MappingSpec[],
  name = NUMBER,
  ttl = 300,
): RecordOf<'MAP'>[] {
  return specs.map((spec) => record(name, 'MAP', mappingRdata(spec), ttl));
}

/** Puts the MAP RRset of `specs` at `name` (a whole RRset, as a registrar writes it). */
export function putMappings(specs: readonly MappingSpec[], name = NUMBER, ttl = 300): RRsetChange {
  return { op: 'put', name, type: 'MAP', records: mapRecords(specs, name, ttl) };
}

/** The RDATA of the MAP records in `records`, hex, sorted (an RRset is a set). */
export function mapHex(records: readonly ResourceRecord[]): string[] {
  return records
    .filter((rr): rr is RecordOf<'MAP'> => rr.type === 'MAP')
    .map((rr) => Buffer.from(rr.data).toString('hex'))
    .sort();
}

/** The hex of `specs`' RDATA, sorted, to compare with {@link mapHex}. */
export function specHex(specs: readonly MappingSpec[]): string[] {
  return specs.map((spec) => Buffer.from(mappingRdata(spec)).toString('hex')).sort();
}

/**
 * Whether the `covered` RRset in `records` has an RRSIG that verifies against the zone's
 * DNSKEY at `now` (RFC 4035 §5.3), with the reason when it does not.
 */
export function verifyIn(
  store: DiscoveryStore,
  records: readonly ResourceRecord[],
  covered: ResourceRecord['type'],
  now: number,
): { kind: 'verified' } | { kind: 'failed'; reason: string } {
  const rrset = records.filter((rr) => rr.type === covered);
  const rrsig = records.find(
    (rr): rr is RecordOf<'RRSIG'> => rr.type === 'RRSIG' && rr.data.typeCovered === covered,
  );
  if (rrsig === undefined) return { kind: 'failed', reason: `no RRSIG over ${covered}` };
  const dnskeys = store.readRRset(ORIGIN, ORIGIN, 'DNSKEY');
  const result = verifyRRset(rrset, rrsig, dnskeys, now);
  return result.kind === 'verified'
    ? { kind: 'verified' }
    : { kind: 'failed', reason: result.reason };
}
