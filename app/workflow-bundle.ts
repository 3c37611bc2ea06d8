// The workflow code bundle, built in a short-lived child process. Bundling (webpack) takes ~220 MB at its
// peak, and a Node process does not give that back to the system after GC, even when it is done in a worker
// thread: built in the worker's own process, it left an idle worker at ~330 MB RSS (peak 477 MB); built here,
// the worker idles at ~210 MB (peak ~260 MB), and every PR waiting for approval has more room.
// `node app/workflow-bundle.ts` writes the bundle to stdout.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundle } from '@temporalio/worker';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
export const WORKFLOW_METRICS_INTERCEPTOR = fileURLToPath(new URL('../workflows/metrics-interceptor.ts', import.meta.url));
const SELF = fileURLToPath(import.meta.url);

/** Bundles the workflows with the metrics interceptor in this process. */
export async function bundleWorkflows(): Promise<WorkflowBundle> {
  const toStderr = (message: string, meta?: object) => process.stderr.write(`${message}${meta ? ` ${JSON.stringify(meta)}` : ''}\n`);
  const quiet = () => undefined;
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: [WORKFLOW_METRICS_INTERCEPTOR],
    logger: { trace: quiet, debug: quiet, info: quiet, log: quiet, warn: toStderr, error: toStderr },
  });
  return { code };
}

/** The same bundle, built by `node app/workflow-bundle.ts` in a child process, so that its memory goes with it. */
export function bundleWorkflowsInChild(): Promise<WorkflowBundle> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ code: Buffer.concat(out).toString('utf8') });
      else reject(new Error(`bundling the workflow code failed (${signal ?? `exit ${code}`}): ${err.trim()}`));
    });
  });
}

if (import.meta.main) {
  const { code } = await bundleWorkflows();
  process.stdout.write(code);
}
