// Project dependency graphs: ordering, cycle reports and a bounded parallel runner.
// Pure and deterministic so the PR workflow can call it: only Promises, no timers, clocks or randomness.

export interface DagNode {
  name: string;
  dependsOn: string[];
}

export type DagOrder =
  | { ok: true; order: string[] }
  /** Each name depends on the next; the first name is repeated at the end, e.g. ['a', 'b', 'a']. */
  | { ok: false; cycle: string[] };

export type NodeOutcome<T> =
  | { status: 'succeeded'; value: T }
  | { status: 'failed'; error: unknown }
  | { status: 'skipped' };

export interface RunDagOptions<T> {
  /** Most nodes running at once (≥ 1). */
  parallelism: number;
  run(name: string): Promise<T>;
  /** After a failure start nothing new; running nodes finish, the rest are skipped (for applies). */
  stopOnFailure?: boolean;
  /**
   * Which ready node starts first. 'critical-path' (default): the one with the longest chain of
   * downstreams, then topological order, so a long chain listed last in the configuration does not
   * wait behind independent nodes (bench:dag: wall/bound 1.27 → 1.03). 'topological': the earliest
   * in topological order.
   */
  priority?: 'topological' | 'critical-path';
}

/** Throws on duplicate names and unknown dependencies: the configuration should have refused both. */
function indexNodes(nodes: readonly DagNode[]): Map<string, number> {
  const index = new Map<string, number>();
  nodes.forEach((node, i) => {
    if (index.has(node.name)) throw new Error(`duplicate node name: ${node.name}`);
    index.set(node.name, i);
  });
  for (const node of nodes) {
    for (const dep of node.dependsOn) {
      if (!index.has(dep)) throw new Error(`${node.name} depends on unknown node ${dep}`);
    }
  }
  return index;
}

/** Topological order; among nodes ready at the same time the one earlier in the input comes first. */
export function buildDag(nodes: readonly DagNode[]): DagOrder {
  const index = indexNodes(nodes);
  const waitingOn = nodes.map((node) => new Set(node.dependsOn).size);
  const dependents = nodes.map(() => [] as number[]);
  nodes.forEach((node, i) => {
    for (const dep of new Set(node.dependsOn)) dependents[index.get(dep)!]!.push(i);
  });

  const ready = new Set<number>();
  waitingOn.forEach((n, i) => n === 0 && ready.add(i));
  const order: string[] = [];
  while (ready.size > 0) {
    // Graphs here are a handful of projects: a linear scan for the earliest ready node is plenty.
    const next = Math.min(...ready);
    ready.delete(next);
    order.push(nodes[next]!.name);
    for (const d of dependents[next]!) if (--waitingOn[d]! === 0) ready.add(d);
  }
  if (order.length === nodes.length) return { ok: true, order };
  return { ok: false, cycle: shortestCycle(nodes, index, new Set(order)) };
}

/** The shortest cycle among the nodes left unordered (ties: the earliest start node in input order). */
function shortestCycle(nodes: readonly DagNode[], index: Map<string, number>, ordered: Set<string>): string[] {
  let best: string[] | undefined;
  for (const start of nodes) {
    if (ordered.has(start.name)) continue;
    // Breadth-first along dependsOn from start back to start gives the shortest cycle through it.
    const previous = new Map<string, string>();
    const queue = [start.name];
    let found = false;
    for (let q = 0; q < queue.length && !found; q++) {
      const current = queue[q]!;
      for (const dep of nodes[index.get(current)!]!.dependsOn) {
        if (dep === start.name) {
          previous.set(start.name, current);
          found = true;
          break;
        }
        if (ordered.has(dep) || previous.has(dep)) continue;
        previous.set(dep, current);
        queue.push(dep);
      }
    }
    if (!found) continue;
    const path = [start.name];
    for (let at = previous.get(start.name)!; at !== start.name; at = previous.get(at)!) path.push(at);
    const cycle = [start.name, ...path.slice(1).reverse(), start.name];
    if (!best || cycle.length < best.length) best = cycle;
  }
  // Unreachable: Kahn's algorithm only leaves nodes out when they sit on or behind a cycle.
  if (!best) throw new Error('unordered nodes without a cycle');
  return best;
}

/**
 * Runs every node once its upstreams have all succeeded (as soon as they have, not in waves), at most
 * `parallelism` at a time; when several could start, the earliest in topological order goes first.
 * A failed node's transitive downstreams are skipped; independent nodes carry on. Never rejects:
 * failures are outcomes. The result lists every node in topological order.
 */
export function runDag<T>(nodes: readonly DagNode[], opts: RunDagOptions<T>): Promise<Map<string, NodeOutcome<T>>> {
  if (!Number.isInteger(opts.parallelism) || opts.parallelism < 1) {
    throw new Error(`parallelism must be a whole number ≥ 1, got ${opts.parallelism}`);
  }
  const dag = buildDag(nodes);
  if (!dag.ok) throw new Error(`dependency cycle: ${dag.cycle.join(' → ')}`);
  const upstreams = new Map(nodes.map((node) => [node.name, node.dependsOn]));
  const outcomes = new Map<string, NodeOutcome<T>>();
  const pending = opts.priority === 'topological' ? [...dag.order] : byChainLength(nodes, dag.order);
  let running = 0;
  let stopped = false;

  return new Promise((resolve) => {
    const finish = (name: string, outcome: NodeOutcome<T>) => {
      outcomes.set(name, outcome);
      running--;
      if (outcome.status === 'failed' && opts.stopOnFailure) stopped = true;
      schedule();
    };

    const start = (name: string) => {
      running++;
      let promise: Promise<T>;
      try {
        promise = opts.run(name);
      } catch (error) {
        promise = Promise.reject(error);
      }
      promise.then(
        (value) => finish(name, { status: 'succeeded', value }),
        (error: unknown) => finish(name, { status: 'failed', error }),
      );
    };

    const schedule = () => {
      // Pending is a topological order, so one pass sees each node after all of its upstreams.
      for (let i = 0; i < pending.length; i++) {
        const name = pending[i]!;
        const states = upstreams.get(name)!.map((dep) => outcomes.get(dep)?.status);
        const blocked = states.some((s) => s === 'failed' || s === 'skipped');
        const ready = states.every((s) => s === 'succeeded');
        if (blocked) outcomes.set(name, { status: 'skipped' });
        else if (ready && !stopped && running < opts.parallelism) start(name);
        else continue;
        pending.splice(i--, 1);
      }
      if (running > 0) return;
      // Nothing running and nothing startable: whatever is left was stopped.
      for (const name of pending.splice(0)) outcomes.set(name, { status: 'skipped' });
      resolve(new Map(dag.order.map((name) => [name, outcomes.get(name)!])));
    };

    schedule();
  });
}

/**
 * `order` stably sorted by the length of each node's longest downstream chain, longest first. Still a
 * topological order: a node's chain is always longer than any of its downstreams'.
 */
function byChainLength(nodes: readonly DagNode[], order: readonly string[]): string[] {
  const dependents = new Map<string, string[]>(nodes.map((node) => [node.name, []]));
  for (const node of nodes) for (const dep of new Set(node.dependsOn)) dependents.get(dep)!.push(node.name);
  const chainLength = new Map<string, number>();
  for (const name of [...order].reverse()) {
    chainLength.set(name, 1 + Math.max(0, ...dependents.get(name)!.map((d) => chainLength.get(d)!)));
  }
  return [...order].sort((a, b) => chainLength.get(b)! - chainLength.get(a)!);
}
