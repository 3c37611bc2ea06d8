// Terrapin's worker in a process of its own, for the crash suite: with CRASH_AT it kills itself with
// SIGKILL at one step boundary, as a crashed container would stop. CRASH_AT is
// `<activityType>:<before|after>[@<nth call>]`, e.g. `checkout:before`, `postComment:after@2`. A crash in
// the middle of a step is the test's to cause: it kills this process once the step says it has started
// (the fixture writes a marker file), never after a guessed delay.
// Started by test/reliability/crash.test.ts; prints "ready" once polling.
import { Context } from '@temporalio/activity';
import { NativeConnection, Worker, type ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { Client, Connection } from '@temporalio/client';
import pino from 'pino';
import { createActivities } from '../../activities/index.ts';
import type { ServerConfig } from '../../app/config.ts';
import { HEARTBEAT_TUNING } from '../../app/worker.ts';

interface CrashWorkerSettings {
  address: string;
  taskQueue: string;
  workflowBundlePath: string;
  config: ServerConfig;
}

const settings = JSON.parse(process.env.CRASH_WORKER_SETTINGS!) as CrashWorkerSettings;
const m = /^(\w+):(before|after)(?:@(\d+))?$/.exec(process.env.CRASH_AT ?? '');
if (process.env.CRASH_AT && !m) throw new Error(`CRASH_AT must be <activity>:<before|after>[@n], got ${process.env.CRASH_AT}`);
const crash = m ? { activity: m[1]!, when: m[2]!, nth: Number(m[3] ?? 1) } : undefined;
let calls = 0;

const die = (): never => {
  process.stdout.write(`crashing at ${process.env.CRASH_AT}\n`);
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
};

class CrashAt implements ActivityInboundCallsInterceptor {
  readonly ctx: Context;
  constructor(ctx: Context) {
    this.ctx = ctx;
  }
  async execute(input: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[0], next: Parameters<NonNullable<ActivityInboundCallsInterceptor['execute']>>[1]): Promise<unknown> {
    if (!crash || this.ctx.info.activityType !== crash.activity || ++calls !== crash.nth) return next(input);
    if (crash.when === 'before') die();
    const result = await next(input);
    if (crash.when === 'after') die();
    return result;
  }
}

const connection = await Connection.connect({ address: settings.address });
const client = new Client({ connection, namespace: settings.config.temporal.namespace });
const nativeConnection = await NativeConnection.connect({ address: settings.address });
const worker = await Worker.create({
  connection: nativeConnection,
  namespace: settings.config.temporal.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: createActivities({ config: settings.config, logger: pino({ level: 'silent' }), temporal: client }),
  interceptors: { activity: [(ctx) => ({ inbound: new CrashAt(ctx) })] },
  ...HEARTBEAT_TUNING,
});
process.stdout.write('ready\n');
await worker.run();
