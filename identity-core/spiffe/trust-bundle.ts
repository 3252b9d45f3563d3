/** A trust domain's bundle: what a peer needs to verify X509-SVIDs and JWT-SVIDs of that domain. */

export interface X509Authority {
  /** DER of a CA certificate. */
  der: Buffer;
  tainted: boolean;
}

export interface JwtAuthority {
  keyId: string;
  /** DER (SubjectPublicKeyInfo) of the public key. */
  publicKeySpki: Buffer;
  /** Unix seconds; 0 means no expiry. */
  expiresAt: number;
  tainted: boolean;
}

export interface TrustBundle {
  trustDomain: string;
  x509Authorities: X509Authority[];
  jwtAuthorities: JwtAuthority[];
  /** Seconds; 0 means unset. */
  refreshHint: number;
  /** Grows by one on every change. */
  sequenceNumber: number;
}
