// Saga: each forward step registers its compensation beside it; on failure they run newest first,
// in a non-cancellable scope so that cancelling the workflow can never stop a rollback half-way.
import { CancellationScope } from '@temporalio/workflow';

/** Runs compensations so that a cancellation cannot stop them; outside a workflow the caller brings its own. */
export type Shield = <R>(fn: () => Promise<R>) => Promise<R>;

const workflowShield: Shield = (fn) => CancellationScope.nonCancellable(fn);

export interface CompensationResult<T> {
  step: string;
  result?: T;
  error?: string;
}

export class Saga<T> {
  private readonly compensations: Array<{ step: string; run: () => Promise<T> }> = [];

  private readonly shield: Shield;

  constructor(shield: Shield = workflowShield) {
    this.shield = shield;
  }

  /** Register before running the forward step: a failed step may already have changed things. */
  add(step: string, run: () => Promise<T>): void {
    this.compensations.push({ step, run });
  }

  get size(): number {
    return this.compensations.length;
  }

  compensate(): Promise<Array<CompensationResult<T>>> {
    return this.shield(async () => {
      const results: Array<CompensationResult<T>> = [];
      for (const { step, run } of [...this.compensations].reverse()) {
        try {
          results.push({ step, result: await run() });
        } catch (err) {
          results.push({ step, error: err instanceof Error ? err.message : String(err) });
        }
      }
      return results;
    });
  }
}
