#!/usr/bin/env node
import('../dist/app/main.js').then((m) => m.main(process.argv.slice(2)));
