/**
 * The fields of one protobuf message, read from its wire encoding: enough to read the few records
 * SPIRE's datastore keeps as protobuf (its bundles and CA journals) without their generated code.
 */
export interface WireField {
  field: number;
  /** Varint fields (ints, bools, enums). */
  int?: bigint;
  /** Length-delimited fields (bytes, strings, nested messages). */
  bytes?: Buffer;
}

function varint(buffer: Buffer, at: number): [bigint, number] {
  let value = 0n;
  for (let shift = 0n; ; shift += 7n) {
    if (at >= buffer.length) throw new Error('truncated protobuf varint');
    const byte = buffer[at++]!;
    value |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [value, at];
  }
}

export function wireFields(buffer: Buffer): WireField[] {
  const fields: WireField[] = [];
  for (let at = 0; at < buffer.length;) {
    const [key, next] = varint(buffer, at);
    at = next;
    const field = Number(key >> 3n);
    switch (Number(key & 7n)) {
      case 0: {
        const [int, after] = varint(buffer, at);
        fields.push({ field, int });
        at = after;
        break;
      }
      case 1:
        at += 8;
        break;
      case 2: {
        const [length, after] = varint(buffer, at);
        const end = after + Number(length);
        if (end > buffer.length) throw new Error('truncated protobuf field');
        fields.push({ field, bytes: buffer.subarray(after, end) });
        at = end;
        break;
      }
      case 5:
        at += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type in key ${key}`);
    }
  }
  return fields;
}

/** Each occurrence of `field` as bytes (a repeated message, say). */
export const bytesOf = (fields: WireField[], field: number): Buffer[] =>
  fields.filter((f) => f.field === field && f.bytes !== undefined).map((f) => f.bytes!);

export const textOf = (fields: WireField[], field: number): string =>
  bytesOf(fields, field).at(-1)?.toString('utf8') ?? '';

export const intOf = (fields: WireField[], field: number): bigint =>
  fields.filter((f) => f.field === field && f.int !== undefined).at(-1)?.int ?? 0n;
