/**
 * Locates and reads the generated tables under data/ (committed; produced by `npm run gen:aws-model`).
 * src/invocation/*.ts and dist/invocation/*.js are both two levels below the package root.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GuardError } from '../errors.js';

const DATA_DIR = fileURLToPath(new URL('../../data/', import.meta.url));

export function readDataJson<T>(relPath: string): T {
  try {
    return JSON.parse(readFileSync(DATA_DIR + relPath, 'utf8')) as T;
  } catch (e) {
    throw new GuardError('internal', `generated table data/${relPath} is missing or unreadable (run npm run gen:aws-model)`, {
      cause: e,
    });
  }
}
