/** What the datastore holds, shaped as the server uses it. Times are Unix seconds, as in SPIRE's API. */

export interface Selector {
  type: string;
  value: string;
}

export interface RegistrationEntry {
  id: string;
  spiffeId: string;
  parentId: string;
  selectors: Selector[];
  /** 0 means the server's default_x509_svid_ttl. */
  x509SvidTtl: number;
  /** 0 means the server's default_jwt_svid_ttl. */
  jwtSvidTtl: number;
  downstream: boolean;
  admin: boolean;
  dnsNames: string[];
  hint: string;
  /** Unix seconds; 0 means never. */
  expiresAt: number;
  createdAt: number;
  revisionNumber: number;
}

export interface AttestedNode {
  spiffeId: string;
  attestationType: string;
  /** Serial of the agent SVID the server last issued, decimal string; '' when banned (as SPIRE marks bans). */
  certSerialNumber: string;
  certNotAfter: number;
  newCertSerialNumber: string;
  newCertNotAfter: number;
  canReattest: boolean;
  selectors: Selector[];
}

export interface JoinToken {
  token: string;
  expiresAt: number;
}
