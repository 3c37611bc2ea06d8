#!/usr/bin/env node
// The `terrapin` command: refuse an old Node in one line, then run the TypeScript CLI.
import './node-check.mjs';
import module from 'node:module';

// Type-stripped modules compiled once per version, not on every command (Node's on-disk compile cache).
module.enableCompileCache?.();
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
