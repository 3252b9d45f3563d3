/** The HTTP/2 wire facts (RFC 9113) that the connection guard needs, and the one frame it writes itself. */

/** Every client connection starts with these 24 bytes, then a SETTINGS frame. */
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME_HEADER_BYTES = 9;

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  SETTINGS: 0x4,
  GOAWAY: 0x7,
  CONTINUATION: 0x9,
} as const;

export const FLAG_END_HEADERS = 0x4;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export interface FrameHeader {
  length: number;
  type: number;
  flags: number;
  streamId: number;
}

export function readFrameHeader(bytes: Buffer, offset: number): FrameHeader {
  return {
    length: bytes.readUIntBE(offset, 3),
    type: bytes[offset + 3]!,
    flags: bytes[offset + 4]!,
    // The top bit is reserved and must be ignored.
    streamId: bytes.readUInt32BE(offset + 5) & 0x7fffffff,
  };
}

/** A GOAWAY frame on stream 0: the last stream the server may have acted on, the error and a reason. */
export function goawayFrame(lastStreamId: number, errorCode: number, debug: string): Buffer {
  const debugData = Buffer.from(debug, 'utf8');
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + 8 + debugData.length);
  frame.writeUIntBE(8 + debugData.length, 0, 3);
  frame[3] = FrameType.GOAWAY;
  frame.writeUInt32BE(lastStreamId & 0x7fffffff, FRAME_HEADER_BYTES);
  frame.writeUInt32BE(errorCode, FRAME_HEADER_BYTES + 4);
  debugData.copy(frame, FRAME_HEADER_BYTES + 8);
  return frame;
}
