#!/usr/bin/env node
// npm's entry point (package.json "bin"). bin/guard-aws is the same for a clone with bin/ on PATH.
import('../dist/app/main.js').then(
  (m) => m.main(process.argv.slice(2)),
  (e) => {
    // A clone that was never built: say what to run rather than print a module-resolution stack.
    if (e && e.code === 'ERR_MODULE_NOT_FOUND' && String(e.message).includes('dist')) {
      process.stderr.write('guard-aws: not built yet; run `npm run setup` (or `npm run build`) in the clone first\n');
      process.exit(69);
    }
    throw e;
  },
);
