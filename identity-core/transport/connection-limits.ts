import type * as grpc from '@grpc/grpc-js';

/**
 * What one peer may hold of a listener (the agent's Workload API socket, the server's admin socket
 * and its TLS endpoint). Without these, one local process could pin the agent: a 1 MiB header block
 * was answered with a GOAWAY but the connection stayed open, and sockets that never spoke were kept
 * forever.
 */
export interface ConnectionLimits {
  /**
   * Bytes of one header block (a HEADERS frame and its CONTINUATION frames). gRPC metadata rarely
   * passes a few KiB and gRPC's own clients refuse more than 8 KiB by default; 64 KiB leaves room
   * for large JWT-SVIDs and still refuses a flood. Over it the connection gets a GOAWAY
   * (ENHANCE_YOUR_CALM) and is closed.
   */
  maxHeaderBlockBytes: number;
  /**
   * From accepting a connection until it has sent the whole client preface and its first SETTINGS
   * frame; on TLS listeners the TLS handshake has as long again before that. A real client sends
   * them at once, so this only ever cuts off sockets that hold a slot while saying nothing.
   */
  handshakeTimeoutMs: number;
  /** A connection with no open stream for this long is closed (GOAWAY NO_ERROR), as grpc-go's MaxConnectionIdle does. */
  idleTimeoutMs: number;
  /**
   * Concurrent streams per connection, advertised in SETTINGS and enforced (further streams are
   * refused with RST_STREAM REFUSED_STREAM); grpc-go, which SPIRE serves with, defaults to 100.
   */
  maxConcurrentStreams: number;
  /**
   * After the listener sends a GOAWAY carrying an error, how long the peer has to read it before the
   * socket is destroyed; the peer is not trusted to close its side.
   */
  closeGraceMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: Readonly<ConnectionLimits> = Object.freeze({
  maxHeaderBlockBytes: 64 * 1024,
  handshakeTimeoutMs: 10_000,
  idleTimeoutMs: 5 * 60_000,
  maxConcurrentStreams: 100,
  closeGraceMs: 100,
});

/** The defaults with `overrides` applied, each checked to be a positive whole number. */
export function connectionLimits(overrides: Partial<ConnectionLimits> = {}): ConnectionLimits {
  const limits = { ...DEFAULT_CONNECTION_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      throw new Error(`connection limit ${name}: must be a positive whole number, got ${String(value)}`);
  }
  return limits;
}

/** The limits grpc-js enforces itself on injected connections: the stream cap and the idle timeout. */
export function grpcServerOptionsFor(limits: ConnectionLimits): grpc.ServerOptions {
  return {
    'grpc.max_concurrent_streams': limits.maxConcurrentStreams,
    'grpc.max_connection_idle_ms': limits.idleTimeoutMs,
  };
}
