import net from 'node:net';
import tls from 'node:tls';
import {
  CLIENT_PREFACE,
  FLAG_END_HEADERS,
  FRAME_HEADER_BYTES,
  FrameType,
  readFrameHeader,
  type FrameHeader,
} from '../../identity-core/transport/http2-frames.js';

/** One frame as the raw client received it. */
export interface ReceivedFrame extends FrameHeader {
  payload: Buffer;
}

export const FLAG_END_STREAM = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS_MAX_CONCURRENT_STREAMS = 0x3;
/** The largest frame payload a peer may send before SETTINGS raise it. */
export const DEFAULT_MAX_FRAME_BYTES = 16_384;

export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload: Buffer = Buffer.alloc(0),
): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInteger(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const bytes = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A header field as an HPACK literal without indexing, new name, no Huffman coding. */
export function literalHeader(name: string, value: string | Buffer): Buffer {
  const n = Buffer.from(name, 'latin1');
  const v = typeof value === 'string' ? Buffer.from(value, 'latin1') : value;
  return Buffer.concat([
    hpackInteger(0, 4, 0),
    hpackInteger(n.length, 7, 0),
    n,
    hpackInteger(v.length, 7, 0),
    v,
  ]);
}

/** The request headers of a gRPC call to `path` (POST, http), HPACK-encoded. */
export function grpcRequestHeaders(path: string, extra: Buffer[] = []): Buffer {
  // 0x83 is the static table's `:method: POST`, 0x86 `:scheme: http`.
  return Buffer.concat([
    Buffer.from([0x83, 0x86]),
    literalHeader(':path', path),
    literalHeader(':authority', 'localhost'),
    literalHeader('content-type', 'application/grpc'),
    literalHeader('te', 'trailers'),
    ...extra,
  ]);
}

/** A header block as one HEADERS frame and as many CONTINUATION frames as the default frame size needs. */
export function headerBlockFrames(streamId: number, block: Buffer, flags = 0): Buffer {
  const frames: Buffer[] = [];
  for (let offset = 0; offset < block.length || offset === 0; offset += DEFAULT_MAX_FRAME_BYTES) {
    const last = offset + DEFAULT_MAX_FRAME_BYTES >= block.length;
    const type = offset === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const own = (offset === 0 ? flags : 0) | (last ? FLAG_END_HEADERS : 0);
    frames.push(frame(type, own, streamId, block.subarray(offset, offset + DEFAULT_MAX_FRAME_BYTES)));
  }
  return Buffer.concat(frames);
}

/** The client preface and an empty SETTINGS frame: what opens every HTTP/2 connection. */
export function clientHandshake(): Buffer {
  return Buffer.concat([CLIENT_PREFACE, frame(FrameType.SETTINGS, 0, 0)]);
}

/**
 * A client that writes whatever bytes a test crafts and records every frame the server sends and
 * when the connection closed, so tests can wait on those events.
 */
export class RawHttp2Client {
  readonly frames: ReceivedFrame[] = [];
  readonly closed: Promise<number>;
  private readonly socket: net.Socket;
  private buffered = Buffer.alloc(0);
  private readonly waiters: Array<() => void> = [];
  private readonly openedAt = Date.now();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    // A server that resets the connection is one of the outcomes under test, not a failure.
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        resolve(Date.now() - this.openedAt);
        this.notify();
      }),
    );
  }

  /** Connects to a Unix socket. */
  static connect(socketPath: string): Promise<RawHttp2Client> {
    return RawHttp2Client.opened(net.connect(socketPath), 'connect');
  }

  /** Connects with TLS, offering h2 and trusting any server certificate (the tests are not about it). */
  static connectTls(port: number): Promise<RawHttp2Client> {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    return RawHttp2Client.opened(socket, 'secureConnect');
  }

  private static opened(socket: net.Socket, event: string): Promise<RawHttp2Client> {
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once(event, () => {
        socket.off('error', reject);
        resolve(new RawHttp2Client(socket));
      });
    });
  }

  get isClosed(): boolean {
    return this.socket.closed;
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves with the first received frame that `match` accepts, or undefined if the connection closes first. */
  async nextFrame(match: (frame: ReceivedFrame) => boolean): Promise<ReceivedFrame | undefined> {
    for (;;) {
      const found = this.frames.find(match);
      if (found || this.isClosed) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Resolves once `count` received frames satisfy `match`; false if the connection closed before. */
  async countFrames(match: (frame: ReceivedFrame) => boolean, count: number): Promise<boolean> {
    for (;;) {
      if (this.frames.filter(match).length >= count) return true;
      if (this.isClosed) return false;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  private onData(chunk: Buffer): void {
    this.buffered = Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= FRAME_HEADER_BYTES) {
      const header = readFrameHeader(this.buffered, 0);
      const end = FRAME_HEADER_BYTES + header.length;
      if (this.buffered.length < end) break;
      this.frames.push({ ...header, payload: Buffer.from(this.buffered.subarray(FRAME_HEADER_BYTES, end)) });
      this.buffered = this.buffered.subarray(end);
    }
    this.notify();
  }

  private notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}
