import { randomBytes } from 'node:crypto';
import { computeKeyTag, type DnskeyData, type RecordOf } from '@mimi-discovery/common';

/**
 * What a KeyTrap zone (CVE-2023-50387) publishes, for the tests of the resolver's validation
 * limits: DNSKEYs that share the key tag of a genuine key, and RRSIGs that name that tag but
 * verify with none of them.
 *
 * The key tag (RFC 4034 Appendix B) is a 16-bit checksum of the DNSKEY RDATA, so any key tag is
 * reached by choosing two octets of a public key. Worked example: a genuine key with tag 20632
 * and 999 random public keys whose last two octets are chosen so that each also has tag 20632:
 * an RRSIG with tag 20632 then has 1,000 candidate keys (RFC 4035 §5.3.1 would try them all).
 */

/** Octets of the DNSKEY RDATA before the public key (flags, protocol, algorithm). */
const RDATA_PREFIX_OCTETS = 4;

/**
 * `count` keys with the flags, protocol, algorithm and key tag of `genuine`, each with other
 * (random) public key octets. They are keys only in form: no signature verifies with them.
 */
export function sameTagKeys(genuine: DnskeyData, count: number): DnskeyData[] {
  const tag = computeKeyTag(genuine);
  const keys: DnskeyData[] = [];
  const length = genuine.publicKey.length;
  // The last two octets of the public key: at an even then an odd offset of the RDATA when the
  // key has an even length, so they add (hi << 8) | lo to the checksum before it is folded.
  if ((RDATA_PREFIX_OCTETS + length) % 2 !== 0) throw new Error('odd-length public keys');
  while (keys.length < count) {
    const publicKey = Uint8Array.from(randomBytes(length));
    publicKey[length - 2] = 0;
    publicKey[length - 1] = 0;
    const base = computeKeyTag({ ...genuine, publicKey });
    // Folding the carry may take one off: try the two sums that can give the tag.
    for (const add of [(tag - base) & 0xffff, (tag - base - 1) & 0xffff]) {
      publicKey[length - 2] = add >>> 8;
      publicKey[length - 1] = add & 0xff;
      if (computeKeyTag({ ...genuine, publicKey }) === tag) {
        keys.push({ ...genuine, publicKey: Uint8Array.from(publicKey) });
        break;
      }
    }
  }
  return keys;
}

/**
 * `count` copies of `rrsig` whose signatures are random octets: each names the genuine key tag,
 * passes every check but the signature itself, and verifies with no key. With `keepGenuine`, the
 * genuine RRSIG comes last, after the forged ones.
 */
export function forgedRrsigs(
  rrsig: RecordOf<'RRSIG'>,
  count: number,
  keepGenuine = false,
): Array<RecordOf<'RRSIG'>> {
  const forged = Array.from({ length: count }, (): RecordOf<'RRSIG'> => ({
    ...rrsig,
    data: { ...rrsig.data, signature: Uint8Array.from(randomBytes(rrsig.data.signature.length)) },
  }));
  return keepGenuine ? [...forged, rrsig] : forged;
}
