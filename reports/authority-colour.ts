/**
 * The colour an authority is drawn in, derived from its key id alone, so that one authority has the
 * same colour in every report and two runs can be compared by eye.
 */

/** FNV-1a, 32 bits: cheap, and spreads similar ids (hex key ids share prefixes) across the range. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * A mid-dark colour from the id: the hue from the low bits, the lightness from others, so that two
 * authorities of one drill rarely look alike; never so light that a bar fades into the page.
 */
export function authorityColour(authorityId: string): string {
  const h = hash(authorityId);
  const hue = h % 360;
  const lightness = 32 + ((h >>> 9) % 5) * 4;
  return `hsl(${hue}, 48%, ${lightness}%)`;
}
