// Terrapin's worker in a process of its own, for the crash suite: with CRASH_AT it kills itself with
// SIGKILL at one step boundary, as a crashed container would stop. CRASH_AT is
// `<activityType>:<before|after|during>[:<ms>][@<nth call>]`, e.g. `plan:during:800`, `postComment:after@2`.
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
const m = /^(\w+):(before|after|during)(?::(\d+))?(?:@(\d+))?$/.exec(process.env.CRASH_AT ?? '');
const crash = m ? { activity: m[1]!, when: m[2]!, ms: Number(m[3] ?? 0), nth: Number(m[4] ?? 1) } : undefined;
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
    if (crash.when === 'during') setTimeout(die, crash.ms);
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
