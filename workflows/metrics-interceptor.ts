// Reports each project run's kind, outcome and duration to the worker's Prometheus registry through a sink: sink
// calls are not made during replay and change no command, so histories stay as they are.
import { proxySinks, workflowInfo, type Sinks, type WorkflowInterceptorsFactory } from '@temporalio/workflow';

export const RUN_METRICS_SINK = 'terrapinRunMetrics';

export interface RunMetricsSinks extends Sinks {
  [RUN_METRICS_SINK]: {
    runFinished(kind: string, outcome: string, seconds: number): void;
  };
}

const PROJECT_RUN = 'projectRun';

export const interceptors: WorkflowInterceptorsFactory = () => {
  if (workflowInfo().workflowType !== PROJECT_RUN) return {};
  const sink = proxySinks<RunMetricsSinks>()[RUN_METRICS_SINK];
  return {
    inbound: [
      {
        async execute(input, next) {
          const kind = (input.args[0] as { kind?: unknown } | undefined)?.kind;
          const seconds = () => (Date.now() - workflowInfo().runStartTime.getTime()) / 1000;
          try {
            const result = await next(input);
            sink.runFinished(String(kind), String((result as { outcome?: unknown } | undefined)?.outcome), seconds());
            return result;
          } catch (err) {
            sink.runFinished(String(kind), 'error', seconds());
            throw err;
          }
        },
      },
    ],
  };
};
