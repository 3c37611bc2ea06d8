// A workflow for test/app/codec-history.test.ts whose activity fails with a message the test looks for.
import { proxyActivities } from '@temporalio/workflow';

const { failWith } = proxyActivities<{ failWith(message: string): Promise<void> }>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 1 },
});

export async function failingWorkflow(message: string): Promise<void> {
  await failWith(message);
}
