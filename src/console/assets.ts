import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { GuardError } from '../errors.js';

/**
 * The console's script and stylesheet, built by `npm run build` (scripts/bundle.mjs: esbuild, from
 * src/console/client/) into dist/ui/. src/console/*.ts, dist/console/*.js and the bundled dist/app/*.js are all
 * two levels below the package root, so the same relative URL finds them. Served under a content hash, so they
 * can be cached for good and a new release is never mixed with an old page.
 */
const DIR = fileURLToPath(new URL('../../dist/ui/', import.meta.url));

export interface Asset {
  body: Buffer;
  type: string;
  /** `/ui/assets/<name>?v=<hash>` */
  href: string;
  hash: string;
}

export interface Assets {
  js: Asset;
  css: Asset;
}

let loaded: Assets | undefined;

export function consoleAssets(dir = DIR): Assets {
  if (loaded && dir === DIR) return loaded;
  const one = (name: string, type: string): Asset => {
    let body: Buffer;
    try {
      body = readFileSync(dir + name);
    } catch (e) {
      throw new GuardError('internal', `console asset ${name} is missing from ${dir} (run npm run build)`, { cause: e });
    }
    const hash = createHash('sha256').update(body).digest('base64url').slice(0, 16);
    return { body, type, href: `/ui/assets/${name}?v=${hash}`, hash };
  };
  const a = { js: one('console.js', 'text/javascript; charset=utf-8'), css: one('console.css', 'text/css; charset=utf-8') };
  if (dir === DIR) loaded = a;
  return a;
}
