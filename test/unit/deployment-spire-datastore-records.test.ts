import { describe, expect, it } from 'vitest';
import { readSpireBundle, readSpireJournal } from '../../deployment/postgres/spire-datastore-records.js';
import { wireFields } from '../../deployment/postgres/protobuf-wire.js';

/**
 * Real SPIRE's protobuf records in its datastore, encoded here by hand with the field numbers of its
 * proto files (spire.common.Bundle, the CA journal's Entries), as its Go code writes them.
 */
function varint(value: number): Buffer {
  const bytes: number[] = [];
  let v = BigInt(value);
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) byte |= 0x80;
    bytes.push(byte);
  } while (v > 0n);
  return Buffer.from(bytes);
}
const int = (field: number, value: number) => Buffer.concat([varint(field << 3), varint(value)]);
const bytes = (field: number, value: Buffer | string) => {
  const data = Buffer.from(value);
  return Buffer.concat([varint((field << 3) | 2), varint(data.length), data]);
};
const fixed64 = (field: number) => Buffer.concat([varint((field << 3) | 1), Buffer.alloc(8)]);

describe("real SPIRE's protobuf datastore records", () => {
  it('reads a bundle: roots with their taint, JWT keys with theirs, skipping fields it does not need', () => {
    const rootA = Buffer.from('root-a-der');
    const rootB = Buffer.from('root-b-der');
    const bundle = Buffer.concat([
      bytes(1, 'spiffe://td'),
      bytes(2, bytes(1, rootA)),
      bytes(2, Buffer.concat([bytes(1, rootB), int(2, 1)])),
      bytes(3, Buffer.concat([bytes(1, 'pkix'), bytes(2, 'kid-1'), int(3, 1_900_000_000)])),
      bytes(3, Buffer.concat([bytes(2, 'kid-2'), int(4, 1)])),
      int(4, 300),
      int(5, 7),
    ]);
    expect(readSpireBundle(bundle)).toEqual({
      roots: [
        { der: rootA, tainted: false },
        { der: rootB, tainted: true },
      ],
      jwtKeys: [
        { keyId: 'kid-1', tainted: false },
        { keyId: 'kid-2', tainted: true },
      ],
    });
  });

  it("reads a CA journal's authorities and statuses (PREPARED 2, ACTIVE 3, OLD 4)", () => {
    const x509 = (id: string, status: number) =>
      bytes(
        1,
        Buffer.concat([
          bytes(1, 'A'),
          int(2, 1_700_000_000),
          bytes(3, 'cert'),
          int(5, status),
          bytes(6, id),
          int(7, 1_800_000_000),
        ]),
      );
    const jwt = (kid: string, status: number) =>
      bytes(2, Buffer.concat([bytes(1, 'B'), bytes(4, kid), bytes(5, 'pk'), int(6, status), bytes(7, kid)]));
    expect(
      readSpireJournal(Buffer.concat([x509('aa', 4), x509('bb', 3), x509('cc', 2), jwt('k1', 3)])),
    ).toEqual([
      { kind: 'x509', id: 'aa', status: 'OLD' },
      { kind: 'x509', id: 'bb', status: 'ACTIVE' },
      { kind: 'x509', id: 'cc', status: 'PREPARED' },
      { kind: 'jwt', id: 'k1', status: 'ACTIVE' },
    ]);
    // No status (UNKNOWN): left out.
    expect(readSpireJournal(bytes(1, bytes(6, 'dd')))).toEqual([]);
  });

  it('refuses truncated input instead of reading past it, and steps over fixed-width fields', () => {
    expect(() => wireFields(Buffer.from([0x12, 0x05, 0x61]))).toThrow(/truncated/);
    expect(() => wireFields(Buffer.from([0x08, 0x80]))).toThrow(/truncated/);
    expect(wireFields(Buffer.concat([fixed64(9), int(1, 5)]))).toEqual([{ field: 1, int: 5n }]);
  });
});
