import { describe, expect, it } from 'vitest';
import {
  MAX_JWT_AUDIENCE_BYTES,
  MAX_JWT_AUDIENCES,
  jwtAudienceProblem,
} from '../../identity-core/agent/jwt-audience-limits.js';

const audiences = (count: number) => Array.from({ length: count }, (_, i) => `aud-${i}`);

describe('JWT-SVID audience limits', () => {
  it('allows 64 audiences and refuses 65', () => {
    expect(MAX_JWT_AUDIENCES).toBe(64);
    expect(jwtAudienceProblem(audiences(64))).toBeUndefined();
    expect(jwtAudienceProblem(audiences(65))).toBe('65 audiences requested; at most 64 are allowed');
  });

  it('allows 8 KiB of audiences in all and refuses one byte more, however it is split', () => {
    expect(MAX_JWT_AUDIENCE_BYTES).toBe(8192);
    expect(jwtAudienceProblem(['a'.repeat(8192)])).toBeUndefined();
    expect(jwtAudienceProblem(['a'.repeat(4096), 'b'.repeat(4096)])).toBeUndefined();
    expect(jwtAudienceProblem(['a'.repeat(4096), 'b'.repeat(4097)])).toBe(
      'audiences of 8193 bytes requested; at most 8192 bytes are allowed',
    );
  });

  it('counts bytes as sent (UTF-8), not characters', () => {
    // 4097 characters of two bytes each.
    expect(jwtAudienceProblem(['é'.repeat(4097)])).toBe(
      'audiences of 8194 bytes requested; at most 8192 bytes are allowed',
    );
  });
});
