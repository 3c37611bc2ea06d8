// A Temporal Schedule kept as configured: created when missing, updated (spec, action, policies only: an
// operator's pause and the history stay) when it no longer matches. Safe to run from several processes
// at once: one that loses the race to create it checks the winner's copy instead.
import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';

type Wanted = Pick<ScheduleOptions, 'spec' | 'action' | 'policies'>;

export async function ensureSchedule(client: Client, scheduleId: string, wanted: Wanted, isCurrent: (described: ScheduleDescription) => boolean): Promise<'created' | 'updated' | 'unchanged'> {
  const handle = client.schedule.getHandle(scheduleId);
  let described = await handle.describe().catch((err: unknown) => {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  });
  if (!described) {
    try {
      await client.schedule.create({ scheduleId, ...wanted });
      return 'created';
    } catch (err) {
      if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      described = await handle.describe();
    }
  }
  if (isCurrent(described)) return 'unchanged';
  await handle.update((prev) => ({ ...prev, spec: wanted.spec, action: wanted.action, policies: { ...prev.policies, ...wanted.policies } }));
  return 'updated';
}
