/**
 * The CA journal, as SPIRE keeps it: for X.509 and for JWT, a current slot and a next slot whose
 * authorities move PREPARED → ACTIVE → OLD, and an OLD authority can be tainted and then revoked.
 * Pure state with SPIRE's preconditions; the CA manager persists it and mirrors it in the bundle.
 */

export type AuthorityStatus = 'PREPARED' | 'ACTIVE' | 'OLD';
export type AuthorityKind = 'x509' | 'jwt';

export interface JournalEntry {
  authorityId: string;
  /** Key manager id of the private key. */
  keyId: string;
  /** Unix seconds. */
  notBefore: number;
  notAfter: number;
  /**
   * Unix seconds: when its preparation began, from which SPIRE counts the rotation thresholds (NotBefore
   * is backdated). Absent in journals written before it was kept; NotBefore stands in.
   */
  issuedAt?: number;
  status: AuthorityStatus;
  tainted: boolean;
  /**
   * Revoked: gone from the bundle, but kept in its slot as SPIRE keeps it (operators still see it as
   * the old authority) until the next prepare reuses the slot.
   */
  revoked?: boolean;
  /** X.509: the CA certificate, base64 DER. JWT: the public key, base64 SPKI DER. */
  material: string;
  /** X.509 from an upstream authority: the certificates between this CA and a root, base64 DER. */
  upstreamChain?: string[];
  /** X.509 from an upstream authority: key id of the upstream CA that signed this one. */
  upstreamAuthorityId?: string;
}

interface Slots {
  current?: JournalEntry;
  next?: JournalEntry;
}

export type CaJournalErrorCode = 'FAILED_PRECONDITION' | 'INVALID_ARGUMENT' | 'NOT_FOUND';

export class CaJournalError extends Error {
  constructor(
    readonly code: CaJournalErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'CaJournalError';
  }
}

export interface AuthorityStates {
  active?: JournalEntry;
  prepared?: JournalEntry;
  old?: JournalEntry;
}

export class CaJournal {
  private readonly slots: Record<AuthorityKind, Slots>;

  constructor(slots?: Record<AuthorityKind, Slots>) {
    this.slots = slots ?? { x509: {}, jwt: {} };
  }

  current(kind: AuthorityKind): JournalEntry | undefined {
    return this.slots[kind].current;
  }

  next(kind: AuthorityKind): JournalEntry | undefined {
    return this.slots[kind].next;
  }

  states(kind: AuthorityKind): AuthorityStates {
    const { current, next } = this.slots[kind];
    return {
      ...(current?.status === 'ACTIVE' ? { active: current } : {}),
      ...(next?.status === 'PREPARED' ? { prepared: next } : {}),
      ...(next?.status === 'OLD' ? { old: next } : {}),
    };
  }

  /** Every authority the journal still trusts, e.g. to find the keys it needs after a restart. */
  entries(kind: AuthorityKind): JournalEntry[] {
    const { current, next } = this.slots[kind];
    return [current, next].filter((e): e is JournalEntry => e !== undefined && !e.revoked);
  }

  /** Starts a journal with no active authority (first start, or keys lost with a memory key manager). */
  bootstrap(kind: AuthorityKind, entry: Omit<JournalEntry, 'status' | 'tainted'>): JournalEntry {
    if (this.slots[kind].current?.status === 'ACTIVE') {
      throw new CaJournalError('FAILED_PRECONDITION', 'an active authority already exists');
    }
    const active: JournalEntry = { ...entry, status: 'ACTIVE', tainted: false };
    this.slots[kind] = { current: active };
    return active;
  }

  /** Fills the next slot with a new PREPARED authority; an OLD one there is dropped, as SPIRE reuses the slot. */
  prepare(kind: AuthorityKind, entry: Omit<JournalEntry, 'status' | 'tainted'>): JournalEntry {
    if (this.slots[kind].current?.status !== 'ACTIVE')
      throw new CaJournalError('FAILED_PRECONDITION', 'server is initializing');
    const next = this.slots[kind].next;
    if (next?.status === 'OLD' && next.tainted && !next.revoked) {
      throw new CaJournalError(
        'FAILED_PRECONDITION',
        'the next slot holds a tainted authority: revoke it before preparing another',
      );
    }
    const prepared: JournalEntry = { ...entry, status: 'PREPARED', tainted: false };
    this.slots[kind].next = prepared;
    return prepared;
  }

  activate(kind: AuthorityKind, authorityId: string): JournalEntry {
    const { current, next } = this.slots[kind];
    if (authorityId === '') throw new CaJournalError('INVALID_ARGUMENT', 'no authority ID provided');
    if (!next || next.authorityId !== authorityId)
      throw new CaJournalError('INVALID_ARGUMENT', 'unexpected authority ID');
    if (next.status !== 'PREPARED')
      throw new CaJournalError('FAILED_PRECONDITION', 'only Prepared authorities can be activated');
    const activated: JournalEntry = { ...next, status: 'ACTIVE' };
    this.slots[kind] = { current: activated, ...(current ? { next: { ...current, status: 'OLD' } } : {}) };
    return activated;
  }

  taint(kind: AuthorityKind, authorityId: string): JournalEntry {
    const { current, next } = this.slots[kind];
    if (authorityId === '') throw new CaJournalError('INVALID_ARGUMENT', 'no authority ID provided');
    if (current?.authorityId === authorityId)
      throw new CaJournalError('INVALID_ARGUMENT', 'unable to taint current local authority');
    if (!next || next.authorityId !== authorityId)
      throw new CaJournalError('INVALID_ARGUMENT', 'unexpected authority ID');
    if (next.status !== 'OLD')
      throw new CaJournalError('INVALID_ARGUMENT', 'only Old local authorities can be tainted');
    if (next.tainted) throw new CaJournalError('FAILED_PRECONDITION', 'authority is already tainted');
    this.slots[kind].next = { ...next, tainted: true };
    return this.slots[kind].next!;
  }

  revoke(kind: AuthorityKind, authorityId: string): JournalEntry {
    const { current, next } = this.slots[kind];
    if (authorityId === '')
      throw new CaJournalError('INVALID_ARGUMENT', 'invalid authority ID: no authority ID provided');
    if (current?.authorityId === authorityId)
      throw new CaJournalError('INVALID_ARGUMENT', 'invalid authority ID: unable to use current authority');
    if (!next || next.authorityId !== authorityId || next.status !== 'OLD') {
      throw new CaJournalError(
        'INVALID_ARGUMENT',
        'invalid authority ID: only Old local authority can be revoked',
      );
    }
    if (!next.tainted)
      throw new CaJournalError('FAILED_PRECONDITION', 'it is not possible to revoke an untainted authority');
    if (next.revoked) throw new CaJournalError('FAILED_PRECONDITION', 'authority is already revoked');
    this.slots[kind].next = { ...next, revoked: true };
    return this.slots[kind].next!;
  }

  toJSON(): Record<AuthorityKind, Slots> {
    return structuredClone(this.slots);
  }

  static fromJSON(data: unknown): CaJournal {
    const slots = data as Record<AuthorityKind, Slots> | null;
    if (!slots || typeof slots !== 'object' || !slots.x509 || !slots.jwt)
      throw new Error('CA journal data is malformed');
    return new CaJournal(structuredClone(slots));
  }
}
