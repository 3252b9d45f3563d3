import { Duplex } from 'node:stream';
import type net from 'node:net';
import type { ConnectionLimits } from './connection-limits.js';
import { ClientFrameScanner, ServerFrameScanner } from './http2-frame-scanner.js';
import { goawayFrame } from './http2-frames.js';

/**
 * Sits between an accepted socket and grpc-js and passes every byte through unchanged while scanning
 * frame headers both ways. It ends the connection when the client is not speaking HTTP/2, sends a
 * header block over the limit (answering with a GOAWAY first), has not finished its preface and first
 * SETTINGS in time, or when the server itself has sent a GOAWAY with an error (nghttp2 would leave
 * that connection open for the client to close). Closing either side closes the other.
 */
export class GuardedConnection extends Duplex {
  private readonly fromClient: ClientFrameScanner;
  private readonly fromServer = new ServerFrameScanner();
  private handshakeTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private closing = false;

  /** `onRefused` hears, once, why the guard ended the connection, if it was the guard that did. */
  constructor(
    private readonly socket: net.Socket,
    private readonly limits: ConnectionLimits,
    private readonly onRefused: (reason: string) => void = () => undefined,
  ) {
    super();
    this.fromClient = new ClientFrameScanner(limits.maxHeaderBlockBytes);
    this.handshakeTimer = setTimeout(() => {
      this.onRefused(`no HTTP/2 preface and SETTINGS within ${limits.handshakeTimeoutMs} ms`);
      this.socket.destroy();
    }, limits.handshakeTimeoutMs);
    this.handshakeTimer.unref();
    socket.on('data', (chunk: Buffer) => this.onClientBytes(chunk));
    socket.on('end', () => this.push(null));
    // A reset peer is not the server's error: 'close' follows and tears the session down.
    socket.on('error', () => undefined);
    socket.on('close', () => this.destroy());
  }

  private onClientBytes(chunk: Buffer): void {
    if (this.closing) return;
    const violation = this.fromClient.scan(chunk);
    if (violation) {
      this.onRefused(violation.reason);
      // Our frame must not land inside one of nghttp2's; if it would, the peer just sees the close.
      if (this.fromServer.atFrameBoundary)
        this.socket.write(goawayFrame(this.fromClient.lastStreamId, violation.errorCode, violation.reason));
      this.closeSoon();
      return;
    }
    if (this.handshakeTimer && this.fromClient.handshakeComplete) this.clearHandshakeTimer();
    if (!this.push(chunk)) this.socket.pause();
  }

  /** Half-closes now and destroys after the grace period: the peer gets to read the GOAWAY, not to hold the socket. */
  private closeSoon(): void {
    this.closing = true;
    this.clearHandshakeTimer();
    this.socket.end();
    this.closeTimer = setTimeout(() => this.socket.destroy(), this.limits.closeGraceMs);
    this.closeTimer.unref();
  }

  private clearHandshakeTimer(): void {
    clearTimeout(this.handshakeTimer);
    this.handshakeTimer = undefined;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.toClient([chunk], callback);
  }

  // nghttp2's frames of one flush arrive together: one corked socket write sends them in one syscall.
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    this.toClient(
      chunks.map((c) => c.chunk),
      callback,
    );
  }

  private toClient(chunks: Buffer[], callback: () => void): void {
    // Once the guard has written its own GOAWAY, nothing more from the server may follow it.
    if (this.closing) {
      callback();
      return;
    }
    let flushed = true;
    this.socket.cork();
    for (const chunk of chunks) {
      this.fromServer.scan(chunk);
      flushed = this.socket.write(chunk);
    }
    this.socket.uncork();
    if (flushed) callback();
    else this.socket.once('drain', () => callback());
    const code = this.fromServer.goawayError;
    if (code !== undefined) {
      this.onRefused(`the server sent GOAWAY with error code ${code}`);
      this.closeSoon();
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearHandshakeTimer();
    clearTimeout(this.closeTimer);
    this.socket.destroy();
    callback(error);
  }
}
