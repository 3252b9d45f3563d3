/**
 * A structural pass over HCL v1 text, before it is decoded. The decoder answers with JSON, where a key
 * assigned twice in one block has already collapsed to its last value and where deep nesting exhausts
 * the stack; both are seen here instead, with their line numbers.
 */
import type { ConfigIssue } from './config-error.js';

/** Deeper than any SPIRE config needs (plugins { X "y" { plugin_data { … } } } is five). */
export const MAX_HCL_NESTING = 32;

interface Scope {
  /** Keys assigned with `=` in this block, and the line of their first assignment. */
  keys: Map<string, number> | undefined;
  closer: '}' | ']';
  path: string[];
}

/**
 * Duplicate assignments in one block and nesting beyond MAX_HCL_NESTING. Repeated *blocks*
 * (`plugins { }` twice) are not flagged here: they merge, and the merge reports keys defined twice.
 */
export function hclStructureIssues(text: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const stack: Scope[] = [{ keys: new Map(), closer: '}', path: [] }];
  let line = 1;
  let pending: string[] = [];
  /** The key just assigned: the next token is its value (or opens its block). */
  let valueOf: string | undefined;
  let i = 0;
  const n = text.length;
  const top = () => stack[stack.length - 1]!;

  const stringAt = /"([^"\\]*(?:\\.[^"\\]*)*)"?/sy;
  const wordAt = /[A-Za-z0-9_.\-:/+$]+/y;
  const readString = (): string => {
    stringAt.lastIndex = i;
    const match = stringAt.exec(text)!;
    for (let j = match[0].indexOf('\n'); j >= 0; j = match[0].indexOf('\n', j + 1)) line++;
    i += match[0].length;
    return match[1]!;
  };

  while (i < n) {
    const c = text[i]!;
    if (c === '\n') {
      line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r' || c === ',') {
      i++;
    } else if (c === '#' || (c === '/' && text[i + 1] === '/')) {
      while (i < n && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      const end = text.indexOf('*/', i + 2);
      const stop = end < 0 ? n : end + 2;
      for (let j = i; j < stop; j++) if (text[j] === '\n') line++;
      i = stop;
    } else if (c === '<' && text[i + 1] === '<') {
      const marker = /^<<-?([A-Za-z0-9_]+)\r?\n/.exec(text.slice(i, i + 200));
      if (!marker) {
        i += 2;
        continue;
      }
      const terminator = new RegExp(`\\n\\s*${marker[1]}\\s*(?=\\n|$)`, 'g');
      terminator.lastIndex = i;
      const found = terminator.exec(text);
      const stop = found ? found.index + found[0].length : n;
      for (let j = i; j < stop; j++) if (text[j] === '\n') line++;
      i = stop;
      valueOf = undefined;
    } else if (c === '"') {
      const word = readString();
      if (valueOf !== undefined) valueOf = undefined;
      else if (top().keys) pending.push(word);
    } else if (c === '=') {
      i++;
      const key = pending[0];
      pending = [];
      const keys = top().keys;
      if (key === undefined || !keys) continue;
      const first = keys.get(key);
      if (first === undefined) keys.set(key, line);
      else
        issues.push({
          path: [...top().path, key].join('.'),
          message: `defined more than once (line ${first} and line ${line})`,
        });
      valueOf = key;
    } else if (c === '{' || c === '[') {
      const isBlock = c === '{';
      const name = valueOf ?? pending[0];
      valueOf = undefined;
      const path = name === undefined ? top().path : [...top().path, name];
      pending = [];
      stack.push({ keys: isBlock ? new Map() : undefined, closer: isBlock ? '}' : ']', path });
      if (stack.length - 1 > MAX_HCL_NESTING) {
        return [
          ...issues,
          {
            path: '',
            message: `blocks nested more than ${MAX_HCL_NESTING} deep at line ${line}`,
          },
        ];
      }
      i++;
    } else if (c === '}' || c === ']') {
      if (stack.length > 1 && top().closer === c) stack.pop();
      pending = [];
      valueOf = undefined;
      i++;
    } else {
      wordAt.lastIndex = i;
      const word = wordAt.exec(text);
      if (!word) {
        i++;
        continue;
      }
      if (valueOf !== undefined) valueOf = undefined;
      else if (top().keys) pending.push(word[0]);
      i += word[0].length;
    }
  }
  return issues;
}
