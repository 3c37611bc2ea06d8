import { describe, expect, it } from 'vitest';
import { buildDag, runDag, type DagNode, type NodeOutcome } from '../../shared/dag.ts';

const graph = (spec: Record<string, string[]>): DagNode[] =>
  Object.entries(spec).map(([name, dependsOn]) => ({ name, dependsOn }));

describe('buildDag', () => {
  it('orders every node after its dependencies', () => {
    const result = buildDag(graph({ app: ['network', 'db'], db: ['network'], network: [] }));
    expect(result).toEqual({ ok: true, order: ['network', 'db', 'app'] });
  });

  it('keeps input order among nodes ready at the same time', () => {
    expect(buildDag(graph({ c: [], a: [], b: [] }))).toEqual({ ok: true, order: ['c', 'a', 'b'] });
    // x becomes ready after y; z was ready from the start but comes later in the input than x.
    expect(buildDag(graph({ y: [], x: ['y'], z: [] }))).toEqual({ ok: true, order: ['y', 'x', 'z'] });
    expect(buildDag(graph({ z: [], y: [], x: ['y'] }))).toEqual({ ok: true, order: ['z', 'y', 'x'] });
  });

  it('gives the same order for repeated dependencies', () => {
    expect(buildDag(graph({ a: [], b: ['a', 'a'] }))).toEqual({ ok: true, order: ['a', 'b'] });
  });

  it('handles an empty graph', () => {
    expect(buildDag([])).toEqual({ ok: true, order: [] });
  });

  it('reports a cycle as a path that follows dependsOn and returns to its start', () => {
    expect(buildDag(graph({ a: ['b'], b: ['c'], c: ['a'] }))).toEqual({ ok: false, cycle: ['a', 'b', 'c', 'a'] });
  });

  it('reports a self-dependency', () => {
    expect(buildDag(graph({ ok: [], a: ['a'] }))).toEqual({ ok: false, cycle: ['a', 'a'] });
  });

  it('reports the shortest cycle, not nodes merely downstream of one', () => {
    // Two cycles, a→b→c→e→a and b→c→b; f only sits behind them.
    const result = buildDag(graph({ f: ['a'], a: ['b'], b: ['c'], c: ['e', 'b'], e: ['a'] }));
    expect(result).toEqual({ ok: false, cycle: ['b', 'c', 'b'] });
  });

  it('throws on unknown dependencies and duplicate names', () => {
    expect(() => buildDag(graph({ a: ['nope'] }))).toThrow('a depends on unknown node nope');
    expect(() => buildDag([{ name: 'a', dependsOn: [] }, { name: 'a', dependsOn: [] }])).toThrow('duplicate node name: a');
  });
});

/** A run() whose calls stay pending until the test settles them; records order and concurrency. */
function controlledRun() {
  const settle = new Map<string, { resolve(v: string): void; reject(e: unknown): void }>();
  const events: string[] = [];
  let running = 0;
  let maxRunning = 0;
  const run = (name: string) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    events.push(`start ${name}`);
    return new Promise<string>((resolve, reject) => {
      settle.set(name, { resolve, reject });
    }).finally(() => {
      running--;
    });
  };
  const flush = async () => {
    for (let i = 0; i < 10; i++) await Promise.resolve();
  };
  return {
    run,
    events,
    get running() {
      return [...settle.keys()].filter((n) => !events.includes(`end ${n}`));
    },
    get maxRunning() {
      return maxRunning;
    },
    async succeed(name: string) {
      events.push(`end ${name}`);
      settle.get(name)!.resolve(`${name}!`);
      await flush();
    },
    async fail(name: string) {
      events.push(`end ${name}`);
      settle.get(name)!.reject(new Error(`${name} broke`));
      await flush();
    },
    flush,
  };
}

const statuses = <T>(outcomes: Map<string, NodeOutcome<T>>) =>
  Object.fromEntries([...outcomes].map(([name, o]) => [name, o.status]));

describe('runDag', () => {
  it('runs at most `parallelism` nodes at once, ties in topological order', async () => {
    const c = controlledRun();
    const done = runDag(graph({ a: [], b: [], c: [], d: [], e: [] }), { parallelism: 2, run: c.run });
    await c.flush();
    expect(c.running).toEqual(['a', 'b']);
    await c.succeed('b');
    expect(c.running).toEqual(['a', 'c']);
    await c.succeed('a');
    await c.succeed('c');
    await c.succeed('d');
    await c.succeed('e');
    const outcomes = await done;
    expect(c.maxRunning).toBe(2);
    expect(c.events.filter((e) => e.startsWith('start'))).toEqual(['start a', 'start b', 'start c', 'start d', 'start e']);
    expect([...outcomes]).toEqual(['a', 'b', 'c', 'd', 'e'].map((n) => [n, { status: 'succeeded', value: `${n}!` }]));
  });

  it('starts a node as soon as its upstreams succeed, not in waves', async () => {
    // Diamond top→(left,right)→bottom next to a chain c1→c2→c3. With waves, bottom would wait for c2.
    const c = controlledRun();
    const nodes = graph({ top: [], left: ['top'], right: ['top'], bottom: ['left', 'right'], c1: [], c2: ['c1'], c3: ['c2'] });
    const done = runDag(nodes, { parallelism: 3, run: c.run });
    await c.flush();
    expect(c.running).toEqual(['top', 'c1']);
    await c.succeed('top');
    expect(c.running).toEqual(['c1', 'left', 'right']);
    await c.succeed('c1');
    expect(c.running).toEqual(['left', 'right', 'c2']);
    await c.succeed('left');
    await c.succeed('right');
    // c2 (level 2) is still running: bottom (level 3) starts anyway.
    expect(c.running).toEqual(['c2', 'bottom']);
    await c.succeed('bottom');
    await c.succeed('c2');
    expect(c.running).toEqual(['c3']);
    await c.succeed('c3');
    expect(statuses(await done)).toEqual(Object.fromEntries(nodes.map((n) => [n.name, 'succeeded'])));
  });

  it('skips the transitive downstreams of a failure and carries on with the rest', async () => {
    const c = controlledRun();
    const nodes = graph({ net: [], db: ['net'], app: ['db'], other: [], after: ['other'] });
    const done = runDag(nodes, { parallelism: 2, run: c.run });
    await c.flush();
    await c.fail('net');
    expect(c.running).toEqual(['other']);
    await c.succeed('other');
    await c.succeed('after');
    const outcomes = await done;
    expect(statuses(outcomes)).toEqual({ net: 'failed', other: 'succeeded', db: 'skipped', app: 'skipped', after: 'succeeded' });
    expect(outcomes.get('net')).toEqual({ status: 'failed', error: new Error('net broke') });
    expect(c.events).not.toContain('start db');
  });

  it('with stopOnFailure starts nothing new after a failure but lets running nodes finish', async () => {
    const c = controlledRun();
    const nodes = graph({ a: [], b: [], c: [], d: ['b'] });
    const done = runDag(nodes, { parallelism: 2, run: c.run, stopOnFailure: true, priority: 'topological' });
    await c.flush();
    await c.fail('a');
    expect(c.running).toEqual(['b']);
    await c.succeed('b');
    expect(statuses(await done)).toEqual({ a: 'failed', b: 'succeeded', c: 'skipped', d: 'skipped' });
    expect(c.events).toEqual(['start a', 'start b', 'end a', 'end b']);
  });

  it("by default ('critical-path') starts the node with the longest chain behind it first", async () => {
    const nodes = graph({ p1: [], p2: [], p3: [], c1: [], c2: ['c1'], c3: ['c2'] });
    const topological = controlledRun();
    void runDag(nodes, { parallelism: 2, run: topological.run, priority: 'topological' });
    await topological.flush();
    expect(topological.running).toEqual(['p1', 'p2']);

    const c = controlledRun();
    const done = runDag(nodes, { parallelism: 2, run: c.run });
    await c.flush();
    expect(c.running).toEqual(['c1', 'p1']);
    await c.succeed('p1');
    expect(c.running).toEqual(['c1', 'p2']);
    await c.succeed('c1');
    expect(c.running).toEqual(['p2', 'c2']); // c2 (chain of 2) goes before p3 (chain of 1)
    for (const name of ['p2', 'c2', 'p3', 'c3']) await c.succeed(name);
    const outcomes = await done;
    expect([...outcomes.keys()]).toEqual(['p1', 'p2', 'p3', 'c1', 'c2', 'c3']); // results stay in topological order
    expect(c.maxRunning).toBe(2);
  });

  it('treats a run() that throws synchronously as a failed node', async () => {
    const outcomes = await runDag(graph({ a: [], b: ['a'] }), {
      parallelism: 1,
      run: () => {
        throw new Error('sync');
      },
    });
    expect(statuses(outcomes)).toEqual({ a: 'failed', b: 'skipped' });
  });

  it('resolves at once for an empty graph and refuses cycles and bad parallelism', async () => {
    expect(await runDag([], { parallelism: 1, run: async () => 1 })).toEqual(new Map());
    expect(() => runDag(graph({ a: ['b'], b: ['a'] }), { parallelism: 1, run: async () => 1 })).toThrow(
      'dependency cycle: a → b → a',
    );
    expect(() => runDag(graph({ a: [] }), { parallelism: 0, run: async () => 1 })).toThrow('parallelism');
  });
});
