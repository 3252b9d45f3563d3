/**
 * What a probe records, one JSON line per sample in its sample file: the SVIDs it received, its
 * handshakes, JWT validations, stream breaks and the identities offered to it. Types only; drills
 * judge from these. Every time is milliseconds since the Unix epoch.
 */
/** One SVID a probe received on its FetchX509SVID stream. */
export interface SvidSample {
  kind: 'svid';
  at: number;
  workload: string;
  serial: string;
  notBefore: number;
  notAfter: number;
  /** Hex subject key id of the CA that signed the leaf (its authority key id). */
  authority: string;
}

/** One mTLS handshake from a probe to its peer, with the SVIDs and bundle it held at the time. */
export interface HandshakeSample {
  kind: 'handshake';
  at: number;
  workload: string;
  peer: string;
  ok: boolean;
  latencyMs: number;
  error?: string;
}

/** One JWT-SVID fetched from the Workload API and validated against the JWT bundle. */
export interface JwtSample {
  kind: 'jwt';
  at: number;
  workload: string;
  ok: boolean;
  latencyMs: number;
  expiresAt?: number;
  error?: string;
}

/** The probe's Workload API stream broke or came back. */
export interface StreamSample {
  kind: 'stream';
  at: number;
  workload: string;
  ok: boolean;
  error?: string;
}

/** The SPIFFE IDs the agent offered the workload changed (an entry was registered or removed). */
export interface IdentitiesSample {
  kind: 'identities';
  at: number;
  workload: string;
  spiffeIds: string[];
}

export type ProbeSample = SvidSample | HandshakeSample | JwtSample | StreamSample | IdentitiesSample;
