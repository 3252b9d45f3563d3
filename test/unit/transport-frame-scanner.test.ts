import { describe, expect, it } from 'vitest';
import { ClientFrameScanner, ServerFrameScanner } from '../../identity-core/transport/http2-frame-scanner.js';
import {
  CLIENT_PREFACE,
  ErrorCode,
  FLAG_END_HEADERS,
  FrameType,
  goawayFrame,
} from '../../identity-core/transport/http2-frames.js';
import { clientHandshake, frame } from '../support/raw-http2-client.js';

const LIMIT = 64 * 1024;

function bytes(length: number): Buffer {
  return Buffer.alloc(length, 0x61);
}

/** Feeds `data` one byte at a time, the worst split a socket can produce; returns the first violation. */
function scanByteByByte(scanner: ClientFrameScanner, data: Buffer) {
  for (let i = 0; i < data.length; i++) {
    const violation = scanner.scan(data.subarray(i, i + 1));
    if (violation) return violation;
  }
  return undefined;
}

describe('ClientFrameScanner', () => {
  it('sees the handshake complete only with the last byte of the first SETTINGS frame', () => {
    const scanner = new ClientFrameScanner(LIMIT);
    const settings = frame(FrameType.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
    const handshake = Buffer.concat([CLIENT_PREFACE, settings]);
    for (let i = 0; i < handshake.length - 1; i++) {
      expect(scanner.scan(handshake.subarray(i, i + 1))).toBeUndefined();
      expect(scanner.handshakeComplete, `after ${i + 1} bytes`).toBe(false);
    }
    scanner.scan(handshake.subarray(handshake.length - 1));
    expect(scanner.handshakeComplete).toBe(true);
  });

  it('refuses bytes that are not the HTTP/2 preface, whole or split', () => {
    expect(new ClientFrameScanner(LIMIT).scan(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toMatchObject({
      errorCode: ErrorCode.PROTOCOL_ERROR,
      reason: expect.stringMatching(/preface/),
    });
    const split = new ClientFrameScanner(LIMIT);
    expect(split.scan(CLIENT_PREFACE.subarray(0, 10))).toBeUndefined();
    expect(split.scan(Buffer.from('X'))?.errorCode).toBe(ErrorCode.PROTOCOL_ERROR);
    expect(split.handshakeComplete).toBe(false);
  });

  it('refuses a first frame other than SETTINGS', () => {
    const scanner = new ClientFrameScanner(LIMIT);
    const violation = scanner.scan(
      Buffer.concat([CLIENT_PREFACE, frame(FrameType.HEADERS, FLAG_END_HEADERS, 1, bytes(10))]),
    );
    expect(violation).toMatchObject({
      errorCode: ErrorCode.PROTOCOL_ERROR,
      reason: expect.stringMatching(/SETTINGS/),
    });
  });

  it('allows a header block of exactly the limit and refuses one byte more, across CONTINUATION frames', () => {
    const atLimit = Buffer.concat([
      clientHandshake(),
      frame(FrameType.HEADERS, 0, 1, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, 0, 1, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, 0, 1, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, FLAG_END_HEADERS, 1, bytes(16 * 1024)),
    ]);
    expect(scanByteByByte(new ClientFrameScanner(LIMIT), atLimit)).toBeUndefined();

    const overBy = new ClientFrameScanner(LIMIT);
    const over = Buffer.concat([
      clientHandshake(),
      frame(FrameType.HEADERS, 0, 5, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, 0, 5, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, 0, 5, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, 0, 5, bytes(16 * 1024)),
      frame(FrameType.CONTINUATION, FLAG_END_HEADERS, 5, bytes(1)),
    ]);
    const violation = scanByteByByte(overBy, over);
    expect(violation).toMatchObject({
      errorCode: ErrorCode.ENHANCE_YOUR_CALM,
      reason: expect.stringMatching(/65537 bytes on stream 5/),
    });
    expect(overBy.lastStreamId).toBe(5);
    // The violation stays: nothing later can make the connection acceptable again.
    expect(overBy.scan(frame(FrameType.SETTINGS, 0, 0))).toBe(violation);
  });

  it('refuses a block from its frame header alone, before the payload arrives', () => {
    const scanner = new ClientFrameScanner(LIMIT);
    const header = frame(FrameType.HEADERS, 0, 1, bytes(1024 * 1024)).subarray(0, 9);
    expect(scanner.scan(Buffer.concat([clientHandshake(), header]))?.errorCode).toBe(
      ErrorCode.ENHANCE_YOUR_CALM,
    );
  });

  it('counts each header block on its own and never counts DATA', () => {
    const scanner = new ClientFrameScanner(LIMIT);
    const chunks = [clientHandshake()];
    for (let stream = 1; stream < 40; stream += 2) {
      chunks.push(frame(FrameType.HEADERS, FLAG_END_HEADERS, stream, bytes(16 * 1024)));
      chunks.push(frame(FrameType.DATA, 0, stream, bytes(200 * 1024)));
    }
    expect(scanner.scan(Buffer.concat(chunks))).toBeUndefined();
    expect(scanner.lastStreamId).toBe(39);
  });
});

describe('ServerFrameScanner', () => {
  it('finds a GOAWAY with an error code even split across writes, and ignores a graceful one', () => {
    const graceful = new ServerFrameScanner();
    graceful.scan(
      Buffer.concat([frame(FrameType.SETTINGS, 0, 0), goawayFrame(3, ErrorCode.NO_ERROR, 'idle')]),
    );
    expect(graceful.goawayError).toBeUndefined();

    const failing = new ServerFrameScanner();
    const stream = Buffer.concat([
      frame(FrameType.DATA, 0, 1, bytes(40_000)),
      goawayFrame(1, 9, 'compression'),
    ]);
    for (let i = 0; i < stream.length; i += 7) failing.scan(stream.subarray(i, i + 7));
    expect(failing.goawayError).toBe(9);
  });

  it('knows whether it stands between frames', () => {
    const scanner = new ServerFrameScanner();
    const settings = frame(FrameType.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
    expect(scanner.atFrameBoundary).toBe(true);
    scanner.scan(settings.subarray(0, 4));
    expect(scanner.atFrameBoundary).toBe(false);
    scanner.scan(settings.subarray(4, 11));
    expect(scanner.atFrameBoundary).toBe(false);
    scanner.scan(settings.subarray(11));
    expect(scanner.atFrameBoundary).toBe(true);
  });
});
