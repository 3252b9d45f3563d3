/** SPIFFE IDs given on the command line, checked before any call is made. */
import { SpiffeId } from '../spiffe/spiffe-id.js';
import type { SPIFFEID } from '../proto/gen/spire/api/types/SPIFFEID.js';
import { CommandError, errorMessage } from './cli-program.js';

/** The API's two-part form of a SPIFFE ID; an invalid one is a CommandError with the parser's reason. */
export function spiffeIdArg(text: string, context?: string): SPIFFEID {
  try {
    const id = SpiffeId.parse(text);
    return { trustDomain: id.trustDomain, path: id.path };
  } catch (error) {
    throw new CommandError(context ? `${context}: ${errorMessage(error)}` : errorMessage(error));
  }
}

export function spiffeIdText(id: { trustDomain?: string; path?: string } | null | undefined): string {
  return id ? `spiffe://${id.trustDomain ?? ''}${id.path ?? ''}` : '';
}
