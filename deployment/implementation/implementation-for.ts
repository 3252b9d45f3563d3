import type { ImplementationName, SpireImplementation } from './implementation.js';
import { realSpire } from './spire.js';
import { tspire } from './tspire.js';

/** The one place an implementation's name becomes the implementation. */
export function implementationFor(name: ImplementationName): SpireImplementation {
  return name === 'tspire' ? tspire : realSpire;
}
