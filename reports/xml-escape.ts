/**
 * Escaping for the XML and HTML reports. Their text comes from probes and processes (error messages,
 * evidence, details) and can hold anything: characters XML 1.0 forbids are replaced with U+FFFD
 * rather than passed on to break the parser that reads the report.
 */

function allowedInXml(codePoint: number): boolean {
  return (
    codePoint === 0x9 ||
    codePoint === 0xa ||
    codePoint === 0xd ||
    (codePoint >= 0x20 && codePoint <= 0xd7ff) ||
    (codePoint >= 0xe000 && codePoint <= 0xfffd) ||
    codePoint >= 0x10000
  );
}

function legal(text: string): string {
  let out = '';
  // for…of walks code points, so a lone surrogate comes alone and is replaced.
  for (const char of text) out += allowedInXml(char.codePointAt(0) ?? 0) ? char : '\uFFFD';
  return out;
}

/** Text content of an element. */
export function escapeText(text: string): string {
  return legal(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** An attribute value in double quotes; line breaks and tabs are kept as references, which parsers would otherwise turn into spaces. */
export function escapeAttribute(text: string): string {
  return escapeText(text)
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    .replace(/\n/g, '&#10;')
    .replace(/\r/g, '&#13;')
    .replace(/\t/g, '&#9;');
}
