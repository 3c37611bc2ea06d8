// Every `terrapin` command, in the order `terrapin --help` lists them. A new command: one module exporting
// `register(program)`, and one line here.
import type { Command } from 'commander';
import * as status from './status.ts';
import * as history from './history.ts';
import * as logs from './logs.ts';
import * as plan from './plan.ts';
import * as apply from './apply.ts';
import * as destroy from './destroy.ts';
import * as drift from './drift.ts';
import * as run from './run.ts';
import * as mcp from './mcp.ts';

export const COMMANDS: Array<{ register(program: Command): void }> = [
  status,
  history,
  logs,
  plan,
  apply,
  destroy,
  drift,
  run,
  mcp,
];
