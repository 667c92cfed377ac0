import { accessSync, constants, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

/**
 * What a clean install sees of package.json: every dependency with an install script is named in `allowScripts`
 * (so an install that enforces it neither skips nor warns about one — esbuild's postinstall checks its platform
 * binary), the engines range admits the supported Node lines (20, 22, 24), and the command the README puts on PATH
 * exists and is executable.
 */
// semver comes with npm's own dependency tree here (no @types package): the one function used is typed by hand.
const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };
const root = resolve(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  allowScripts: Record<string, boolean>;
  engines: { node: string };
  bin: Record<string, string>;
};
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };

describe('package.json', () => {
  it('allowScripts names every dependency that has an install script', () => {
    const withScripts = Object.entries(lock.packages)
      .filter(([path, p]) => path !== '' && p.hasInstallScript)
      .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
    expect(withScripts.length).toBeGreaterThan(0);
    for (const name of withScripts) expect(pkg.allowScripts, name).toHaveProperty(name, true);
  });

  it('engines admits Node 20 (as tested here), 22 and 24, and not 18', () => {
    for (const v of ['20.19.0', '22.12.0', '24.0.0', process.versions.node]) expect(semver.satisfies(v, pkg.engines.node), v).toBe(true);
    expect(semver.satisfies('18.20.0', pkg.engines.node)).toBe(false);
  });

  it('bin/guard-aws (the README PATH line) and the npm bin are executable', () => {
    for (const f of ['bin/guard-aws', pkg.bin['guard-aws']!]) expect(() => accessSync(join(root, f), constants.X_OK), f).not.toThrow();
  });
});
