// Used inside a workflow to take and give back project locks: send the request through an activity,
// then wait for the lock's answer signal. Create one client per workflow run (it installs the handler).
import { condition, setHandler, uuid4 } from '@temporalio/workflow';
import { requestLock } from './activities.ts';
import { lockAnswerSignal, type LockAnswer, type LockHolder, type LockInput } from '../shared/contracts.ts';


export interface LockClient {
  acquire(lockId: string): Promise<LockAnswer>;
  release(lockId: string): Promise<LockAnswer>;
}

export function createLockClient(holder: LockHolder, lockInput: LockInput = {}): LockClient {
  const answers = new Map<string, LockAnswer>();
  setHandler(lockAnswerSignal, (answer) => {
    answers.set(answer.requestId, answer);
  });

  async function ask(lockId: string, kind: 'acquire' | 'release'): Promise<LockAnswer> {
    const requestId = uuid4();
    await requestLock({ lockId, request: { kind, requestId, holder }, lockInput });
    await condition(() => answers.has(requestId));
    const answer = answers.get(requestId)!;
    answers.delete(requestId);
    return answer;
  }

  return { acquire: (lockId) => ask(lockId, 'acquire'), release: (lockId) => ask(lockId, 'release') };
}
