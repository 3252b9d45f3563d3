const UNBOUND = '127.0.0.1:0';
const CHOSEN = 'port chosen at spin-up';

/**
 * A planned target in words: before spin-up its ports are 0, which the plan says as "port chosen at
 * spin-up" where the address would stand, inside the parentheses that follow it if any.
 */
export function plannedTarget(target: string): string {
  return target
    .replaceAll(`(${UNBOUND})`, `(${CHOSEN})`)
    .replaceAll(` ${UNBOUND} (`, ` (${CHOSEN}; `)
    .replaceAll(` on ${UNBOUND}`, ` (${CHOSEN})`)
    .replaceAll(` ${UNBOUND}`, ` (${CHOSEN})`);
}
