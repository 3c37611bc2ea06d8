#!/usr/bin/env node
// The `terrapin` command: refuse an old Node in one line, then run the TypeScript CLI.
import './node-check.mjs';

const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
