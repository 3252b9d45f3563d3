/**
 * Each audience set a workload asks for is a JWT-SVID cache key and is signed into a token: bounded,
 * so that a workload cannot make the agent hold megabytes per request (real audiences are a service
 * name or two).
 */
export const MAX_JWT_AUDIENCES = 64;
export const MAX_JWT_AUDIENCE_BYTES = 8 * 1024;

/** Why FetchJWTSVID refuses these audiences, or undefined when they are within the limits. */
export function jwtAudienceProblem(audience: string[]): string | undefined {
  if (audience.length > MAX_JWT_AUDIENCES)
    return `${audience.length} audiences requested; at most ${MAX_JWT_AUDIENCES} are allowed`;
  const bytes = audience.reduce((sum, a) => sum + Buffer.byteLength(a), 0);
  if (bytes > MAX_JWT_AUDIENCE_BYTES)
    return `audiences of ${bytes} bytes requested; at most ${MAX_JWT_AUDIENCE_BYTES} bytes are allowed`;
  return undefined;
}
