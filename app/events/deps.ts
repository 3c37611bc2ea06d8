// What every event handler is given: the one way into Temporal, and a logger.
import type { Deliverer } from '../deliver.ts';
import type { Logger } from '../logger.ts';

export interface HandlerDeps {
  deliver: Deliverer;
  logger: Logger;
}
