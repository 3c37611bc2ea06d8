// `terrapin destroy`: see operator-runs.ts.
import type { Command } from 'commander';
import { registerOperatorRun } from './operator-runs.ts';

export function register(program: Command): void {
  registerOperatorRun(program, 'destroy');
}
