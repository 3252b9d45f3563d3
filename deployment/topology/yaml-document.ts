/**
 * Reading a YAML file that a zod schema then validates (topologies, scenarios, suites): each problem
 * becomes one line naming the field, so every file of the project reports errors the same way.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

/** The decoded document, or the one-line reason it cannot be read (thrown as `invalid`). */
export async function readYamlDocument(path: string, invalid: (issues: string[]) => Error): Promise<unknown> {
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw invalid([`cannot read the file: ${error.code ?? error.message}`]);
  });
  try {
    return parseYaml(text);
  } catch (error) {
    throw invalid([`not valid YAML: ${(error as Error).message.split('\n')[0]}`]);
  }
}

/** One line per zod issue: `field.path: message`. */
export function issueLines(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`);
}
