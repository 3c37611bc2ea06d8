// Used inside a workflow to take and give back project locks: send the request through an activity,
// then wait for the lock's answer signal. Create one client per workflow run (it installs the handlers).
// Hooks run inside the signal handlers, so the caller sees answers and notices in the order they came.
import { condition, setHandler, uuid4 } from '@temporalio/workflow';
import { requestLock } from './activities.ts';
import { lockAnswerSignal, lockNoticeSignal, type LockAnswer, type LockHolder, type LockInput, type LockNotice, type LockRequest } from '../shared/contracts.ts';

export interface LockClient {
  /** `wait: false` asks without taking a place in line; `ttl` is the repository's `lock.ttl`. */
  acquire(lockId: string, opts?: { wait?: boolean; ttl?: string }): Promise<LockAnswer>;
  release(lockId: string): Promise<LockAnswer>;
  /** Tells the lock its holder is active (no answer). */
  touch(lockId: string, ttl?: string): Promise<void>;
}

export interface LockHooks {
  onAnswer?(answer: LockAnswer, kind: 'acquire' | 'release'): void;
  onNotice?(notice: LockNotice): void;
}

export function createLockClient(holder: LockHolder, lockInput: LockInput = {}, hooks: LockHooks = {}): LockClient {
  const answers = new Map<string, LockAnswer>();
  const asked = new Map<string, 'acquire' | 'release'>();
  setHandler(lockAnswerSignal, (answer) => {
    const kind = asked.get(answer.requestId);
    if (!kind) return; // an answer to an earlier run's request
    answers.set(answer.requestId, answer);
    hooks.onAnswer?.(answer, kind);
  });
  setHandler(lockNoticeSignal, (notice) => hooks.onNotice?.(notice));

  async function ask(lockId: string, kind: 'acquire' | 'release', extra: Partial<LockRequest> = {}): Promise<LockAnswer> {
    const requestId = uuid4();
    asked.set(requestId, kind);
    await requestLock({ lockId, request: { kind, requestId, holder, ...extra }, lockInput });
    await condition(() => answers.has(requestId));
    const answer = answers.get(requestId)!;
    answers.delete(requestId);
    asked.delete(requestId);
    return answer;
  }

  return {
    acquire: (lockId, opts = {}) => ask(lockId, 'acquire', { ...(opts.wait === false ? { wait: false } : {}), ...(opts.ttl ? { ttl: opts.ttl } : {}) }),
    release: (lockId) => ask(lockId, 'release'),
    touch: (lockId, ttl) => requestLock({ lockId, request: { kind: 'touch', requestId: uuid4(), holder, ...(ttl ? { ttl } : {}) }, lockInput }),
  };
}
