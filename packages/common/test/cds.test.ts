import { describe, expect, it } from 'vitest';
import { formatRecord } from '../src/protocol/presentation.js';
import type { ResourceRecord } from '../src/protocol/records.js';
import { codeToType, decodeRdata, encodeRdata, typeToCode } from '../src/protocol/wire.js';
import { parseZoneFile } from '../src/protocol/zone-file.js';

// CDS and CDNSKEY (RFC 7344 §3) have the RDATA of DS and DNSKEY; RFC 8078 §4 adds the delete
// forms "0 0 0 00" and "0 3 0 AA==".
describe('CDS and CDNSKEY', () => {
  const text = [
    'example. 3600 IN CDS 12345 15 2 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    'example. 3600 IN CDNSKEY 257 3 15 l02Woi0iS8Aa25FQkUd9RMzZHJpBoRQwAQEX1SxZJA4=',
    'delete.example. 3600 IN CDS 0 0 0 00',
    'delete.example. 3600 IN CDNSKEY 0 3 0 AA==',
  ];

  it('read from a zone file, print back the same and survive the wire', () => {
    const records = parseZoneFile(text.join('\n'));
    expect(records.map((rr) => rr.type)).toEqual(['CDS', 'CDNSKEY', 'CDS', 'CDNSKEY']);
    expect(records.map(formatRecord).map((line) => line.replace(/\s+/g, ' '))).toEqual(text);
    for (const rr of records) {
      const again = decodeRdata(rr.type, encodeRdata(rr));
      expect({ ...rr, data: again } as ResourceRecord).toEqual(rr);
    }
  });

  it('keep their own type codes (59 and 60), not those of DS and DNSKEY', () => {
    expect([typeToCode('CDS'), typeToCode('CDNSKEY')]).toEqual([59, 60]);
    expect([codeToType(59), codeToType(60)]).toEqual(['CDS', 'CDNSKEY']);
  });
});
