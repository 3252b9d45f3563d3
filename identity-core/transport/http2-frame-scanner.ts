import {
  CLIENT_PREFACE,
  ErrorCode,
  FLAG_END_HEADERS,
  FRAME_HEADER_BYTES,
  FrameType,
  readFrameHeader,
  type FrameHeader,
} from './http2-frames.js';

/** Why the guard ends a connection: the HTTP/2 error code its GOAWAY carries and a reason for people. */
export interface Violation {
  errorCode: number;
  reason: string;
}

/**
 * Walks the frames of one direction of an HTTP/2 connection as its bytes pass, chunk by chunk,
 * reading only the 9-byte frame headers and stepping over payloads, so it costs a few operations per
 * frame whatever the payload size. Subclasses decide what a frame means; they may ask for the first
 * bytes of a payload.
 */
abstract class FrameWalker {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFill = 0;
  private payloadLeft = 0;
  private capture: Buffer | undefined;
  private captureFill = 0;
  private current: FrameHeader | undefined;

  /** Whether every byte seen so far ends a whole frame: a frame of our own may be written here. */
  get atFrameBoundary(): boolean {
    return this.headerFill === 0 && this.payloadLeft === 0;
  }

  /** Called with each frame header; returns how many leading payload bytes `onPayloadPrefix` should see. */
  protected abstract onFrame(frame: FrameHeader): number;

  protected onPayloadPrefix(_frame: FrameHeader, _prefix: Buffer): void {}

  protected onFrameEnd(_frame: FrameHeader): void {}

  /** Scans `chunk` from `start`, stopping early once `stopped()` holds. */
  protected walk(chunk: Buffer, start: number, stopped: () => boolean): void {
    let i = start;
    while (i < chunk.length && !stopped()) {
      if (this.current) {
        const n = Math.min(this.payloadLeft, chunk.length - i);
        if (this.capture && this.captureFill < this.capture.length) {
          const take = Math.min(n, this.capture.length - this.captureFill);
          chunk.copy(this.capture, this.captureFill, i, i + take);
          this.captureFill += take;
          if (this.captureFill === this.capture.length) this.onPayloadPrefix(this.current, this.capture);
        }
        this.payloadLeft -= n;
        i += n;
        if (this.payloadLeft === 0) this.finishFrame();
        continue;
      }
      let frame: FrameHeader;
      if (this.headerFill === 0 && chunk.length - i >= FRAME_HEADER_BYTES) {
        frame = readFrameHeader(chunk, i);
        i += FRAME_HEADER_BYTES;
      } else {
        const take = Math.min(FRAME_HEADER_BYTES - this.headerFill, chunk.length - i);
        chunk.copy(this.header, this.headerFill, i, i + take);
        this.headerFill += take;
        i += take;
        if (this.headerFill < FRAME_HEADER_BYTES) break;
        this.headerFill = 0;
        frame = readFrameHeader(this.header, 0);
      }
      this.current = frame;
      this.payloadLeft = frame.length;
      const wanted = Math.min(this.onFrame(frame), frame.length);
      this.capture = wanted > 0 ? Buffer.alloc(wanted) : undefined;
      this.captureFill = 0;
      if (frame.length === 0) this.finishFrame();
    }
  }

  private finishFrame(): void {
    const frame = this.current!;
    this.current = undefined;
    this.capture = undefined;
    this.onFrameEnd(frame);
  }
}

/**
 * What a client sends: checks the preface, notes when the handshake (preface and first SETTINGS
 * frame) is complete, and sums each header block (HEADERS plus CONTINUATION payload lengths, counted
 * as each frame header arrives, so a 1 MiB block is refused before its bytes are read).
 */
export class ClientFrameScanner extends FrameWalker {
  private prefaceSeen = 0;
  private firstFrame = true;
  private headerBlockBytes = 0;
  private inHeaderBlock = false;
  private violationFound: Violation | undefined;
  private handshakeDone = false;
  private highestStreamId = 0;

  constructor(private readonly maxHeaderBlockBytes: number) {
    super();
  }

  /** True once the client preface and the whole first SETTINGS frame have arrived. */
  get handshakeComplete(): boolean {
    return this.handshakeDone;
  }

  /** The highest stream the client opened: what a GOAWAY names as the last stream that may have been processed. */
  get lastStreamId(): number {
    return this.highestStreamId;
  }

  get violation(): Violation | undefined {
    return this.violationFound;
  }

  /** Scans the next bytes from the client; returns the violation that ends the connection, if any (it stays). */
  scan(chunk: Buffer): Violation | undefined {
    if (this.violationFound) return this.violationFound;
    let start = 0;
    if (this.prefaceSeen < CLIENT_PREFACE.length) {
      const take = Math.min(CLIENT_PREFACE.length - this.prefaceSeen, chunk.length);
      if (chunk.compare(CLIENT_PREFACE, this.prefaceSeen, this.prefaceSeen + take, 0, take) !== 0) {
        this.violationFound = {
          errorCode: ErrorCode.PROTOCOL_ERROR,
          reason: 'not an HTTP/2 client: the connection preface is wrong',
        };
        return this.violationFound;
      }
      this.prefaceSeen += take;
      start = take;
    }
    this.walk(chunk, start, () => this.violationFound !== undefined);
    return this.violationFound;
  }

  protected onFrame(frame: FrameHeader): number {
    if (this.firstFrame) {
      this.firstFrame = false;
      if (frame.type !== FrameType.SETTINGS) {
        this.violationFound = {
          errorCode: ErrorCode.PROTOCOL_ERROR,
          reason: `the client preface must be followed by SETTINGS, not a frame of type ${frame.type}`,
        };
        return 0;
      }
    }
    if (frame.type === FrameType.HEADERS) {
      this.inHeaderBlock = true;
      this.headerBlockBytes = 0;
      if (frame.streamId > this.highestStreamId) this.highestStreamId = frame.streamId;
    }
    if (frame.type === FrameType.HEADERS || (frame.type === FrameType.CONTINUATION && this.inHeaderBlock)) {
      this.headerBlockBytes += frame.length;
      if (this.headerBlockBytes > this.maxHeaderBlockBytes) {
        this.violationFound = {
          errorCode: ErrorCode.ENHANCE_YOUR_CALM,
          reason: `header block of at least ${this.headerBlockBytes} bytes on stream ${frame.streamId}; at most ${this.maxHeaderBlockBytes} are allowed`,
        };
        return 0;
      }
      if (frame.flags & FLAG_END_HEADERS) this.inHeaderBlock = false;
    }
    return 0;
  }

  protected override onFrameEnd(frame: FrameHeader): void {
    if (!this.handshakeDone && frame.type === FrameType.SETTINGS) this.handshakeDone = true;
  }
}

/**
 * What the server (nghttp2 under grpc-js) sends: finds GOAWAY frames that carry an error. nghttp2
 * answers a protocol error with such a GOAWAY and then stops reading, but leaves the socket open for
 * the client to close; the guard closes it instead.
 */
export class ServerFrameScanner extends FrameWalker {
  private errorGoaway: number | undefined;

  /** The error code of the first GOAWAY with an error that the server sent, if any. */
  get goawayError(): number | undefined {
    return this.errorGoaway;
  }

  scan(chunk: Buffer): void {
    this.walk(chunk, 0, () => false);
  }

  protected onFrame(frame: FrameHeader): number {
    // Last stream id, then the error code.
    return frame.type === FrameType.GOAWAY && frame.streamId === 0 ? 8 : 0;
  }

  protected override onPayloadPrefix(_frame: FrameHeader, prefix: Buffer): void {
    const code = prefix.readUInt32BE(4);
    if (code !== ErrorCode.NO_ERROR && this.errorGoaway === undefined) this.errorGoaway = code;
  }
}
