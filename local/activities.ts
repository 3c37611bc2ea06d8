// The activities of a run, called in-process for a local run: each call runs inside an activity Context, so
// process.ts sees the run's cancellation signal and stops terraform as a worker would (SIGTERM to its process,
// a grace period for it to release the state lock, then its process group killed); and its failures come
// back the way a worker reports them (an ActivityFailure with the activity's own failure as cause), so the
// run's steps (workflows/project-run.ts) read them unchanged.
import { AsyncLocalStorage } from 'node:async_hooks';
import { asyncLocalStorage, Context, type Info } from '@temporalio/activity';
import { ActivityFailure, ApplicationFailure, CancelledFailure, noopMetricMeter, RetryState, TemporalFailure } from '@temporalio/common';
import type { RunActivities } from '../workflows/project-run.ts';
import type { Shield } from '../workflows/saga.ts';

const silentLog = { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** Calls inside `shield` run to the end whatever happens to the run's signal (the saga's rollbacks). */
const shielded = new AsyncLocalStorage<true>();
export const localShield: Shield = (fn) => shielded.run(true, fn);

const NEVER = new AbortController().signal;

function contextFor(name: string, signal: AbortSignal): Context {
  const cancelled = new Promise<never>((_, reject) => {
    const fire = () => reject(new CancelledFailure(String(signal.reason ?? 'cancelled')));
    if (signal.aborted) fire();
    else signal.addEventListener('abort', fire, { once: true });
  });
  cancelled.catch(() => undefined);
  // Only what process.ts and the activities read: the cancellation signal, heartbeats (none needed here).
  const info = { activityType: name, activityId: name, attempt: 1, isLocal: true } as unknown as Info;
  const ContextClass = Context as unknown as new (...args: unknown[]) => Context;
  return new ContextClass(info, cancelled, signal, () => undefined, undefined, silentLog, noopMetricMeter, {});
}

/** An activity's error as a worker would report it to the workflow. */
export function asActivityFailure(name: string, err: unknown): ActivityFailure {
  if (err instanceof ActivityFailure) return err;
  const cause =
    err instanceof TemporalFailure
      ? err
      : ApplicationFailure.create({ message: err instanceof Error ? err.message : String(err), type: err instanceof Error ? err.name : 'Error', nonRetryable: true });
  return new ActivityFailure(cause.message, name, name, RetryState.NON_RETRYABLE_FAILURE, 'terrapin-local', cause);
}

type AnyFn = (...args: never[]) => Promise<unknown>;

/** Each function of `impl` called in its own activity context, cancelled by `signal` unless shielded. */
export function inProcess<T extends Record<string, AnyFn>>(impl: T, signal: AbortSignal): T {
  const wrapped: Record<string, AnyFn> = {};
  for (const [name, fn] of Object.entries(impl)) {
    wrapped[name] = async (...args: never[]) => {
      const own = shielded.getStore() ? NEVER : signal;
      if (own.aborted) throw asActivityFailure(name, new CancelledFailure('cancelled'));
      try {
        return await asyncLocalStorage.run(contextFor(name, own), () => fn(...args));
      } catch (err) {
        throw asActivityFailure(name, err);
      }
    };
  }
  return wrapped as T;
}

export type { RunActivities };
