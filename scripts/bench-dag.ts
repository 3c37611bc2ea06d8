// `npm run bench:dag`: how close runDag's schedule comes to the best possible one on real terraform plans.
// 12 roots in a temp git repo: 8 independent projects and a chain of 4 (c2 needs c1, …). Each root gets
// real `terraform init` + `plan` (+ `show`) through activities/terraform.ts plan(), scheduled by runDag with
// parallelism 2. For now runDag is called directly, outside Temporal. No schedule can beat
// max(longest chain, total work / parallelism): wall / that bound is the figure (target ≤ 1.15).
// Settings: BENCH_ROUNDS (3), BENCH_PARALLELISM (2), BENCH_CHAIN=last to list the chain after the projects,
// BENCH_PRIORITY=topological for runDag's plain topological order instead of its critical-path default.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { plan } from '../activities/terraform.ts';
import { createFixtureRepo, terraformFixture } from '../test/helpers/fixture-repo.ts';
import { runDag, type DagNode } from '../shared/dag.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PARALLELISM = Number(process.env.BENCH_PARALLELISM ?? 2);
const CHAIN_LAST = process.env.BENCH_CHAIN === 'last';
const PRIORITY = process.env.BENCH_PRIORITY === 'topological' ? 'topological' : 'critical-path';
const RESOURCES_PER_ROOT = 4;

const independent = Array.from({ length: 8 }, (_, i) => `p${i + 1}`);
const chain = ['c1', 'c2', 'c3', 'c4'];
const dirOf = (name: string) => (name.startsWith('c') ? `chain/${name}` : `projects/${name}`);

function nodes(): DagNode[] {
  const chainNodes = chain.map((name, i) => ({ name, dependsOn: i === 0 ? [] : [chain[i - 1]!] }));
  const projectNodes = independent.map((name) => ({ name, dependsOn: [] }));
  // With topological priority ties start in input order, so listing the chain first starts it first.
  return CHAIN_LAST ? [...projectNodes, ...chainNodes] : [...chainNodes, ...projectNodes];
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function round(tmp: string, cloneUrl: string, n: number) {
  const workDir = join(tmp, `round-${n}`);
  execFileSync('git', ['clone', '-q', cloneUrl, workDir]);
  const times = new Map<string, number>();
  const started = performance.now();
  const outcomes = await runDag(nodes(), {
    parallelism: PARALLELISM,
    priority: PRIORITY,
    async run(name) {
      const t = performance.now();
      const result = await plan({ workDir, projectDir: dirOf(name), workspace: 'default', binary: 'terraform' }, { dataDir: join(tmp, 'data') });
      times.set(name, performance.now() - t);
      if (!result.ok) throw new Error(`${name}: terraform ${result.step} failed, see ${result.outputFile}`);
      return result.summary.line;
    },
  });
  const wall = performance.now() - started;
  const failed = [...outcomes].filter(([, o]) => o.status !== 'succeeded');
  if (failed.length > 0) throw new Error(`not every plan succeeded: ${JSON.stringify(failed.map(([name, o]) => [name, o.status, String((o as { error?: unknown }).error ?? '')]))}`);

  const total = [...times.values()].reduce((a, b) => a + b, 0);
  const chainSum = chain.reduce((sum, name) => sum + times.get(name)!, 0);
  const bound = Math.max(chainSum, total / PARALLELISM);
  return { wall, times, total, chainSum, bound, ratio: wall / bound };
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-bench-dag-'));
  try {
    const files: Record<string, string> = {};
    for (const name of [...independent, ...chain]) {
      const resources = Object.fromEntries(
        Array.from({ length: RESOURCES_PER_ROOT }, (_, i) => [`r${i}`, { input: `${name}-${i}` }]),
      );
      files[`${dirOf(name)}/main.tf`] = terraformFixture({ stateFile: join(tmp, 'state', `${name}.tfstate`), resources, outputs: { first: '${terraform_data.r0.output}' } });
    }
    const repo = await createFixtureRepo(files);
    const version = execFileSync('terraform', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0];
    process.stdout.write(
      `DAG benchmark: ${independent.length} independent projects + a chain of ${chain.length} (${chain.join(' → ')}), ` +
        `${RESOURCES_PER_ROOT} terraform_data each, parallelism ${PARALLELISM}, chain listed ${CHAIN_LAST ? 'last' : 'first'}, ${PRIORITY} priority\n` +
        `  real ${version} init + plan + show per project via activities/terraform.ts plan()\n` +
        `  runDag called directly, outside Temporal (the workflow integration comes later)\n` +
        `  machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)} at start\n\n`,
    );

    const ratios: number[] = [];
    for (let n = 1; n <= ROUNDS; n++) {
      const r = await round(tmp, repo.cloneUrl, n);
      ratios.push(r.ratio);
      const perProject = [...chain, ...independent].map((name) => `${name} ${seconds(r.times.get(name)!)}`).join(', ');
      process.stdout.write(
        `round ${n}: wall ${seconds(r.wall)}; bound ${seconds(r.bound)} = max(chain ${seconds(r.chainSum)}, ` +
          `total ${seconds(r.total)} / ${PARALLELISM} = ${seconds(r.total / PARALLELISM)}); wall/bound ${r.ratio.toFixed(3)}\n` +
          `  terraform per project: ${perProject}\n`,
      );
    }
    const sorted = [...ratios].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)]!;
    process.stdout.write(`\nwall/bound: median ${median.toFixed(3)}, worst ${sorted.at(-1)!.toFixed(3)} (target ≤ 1.15)\n`);
    await repo.cleanup();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
