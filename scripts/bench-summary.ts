// `npm run bench:summary`: how long a plan comment with its change summary takes for a very large plan.
// A synthetic `show -json` of BENCH_CHANGES (10,000) resource changes and 200 outputs, with plan text to
// match, is written to files as a plan leaves them; each round renders the whole plan comment from the
// files (read, parse, group, template) as the comment activity does, then splits it as postText does.
// Target: a median ≤ 2 s, every part within GitHub's limit. Also: the multi-project comment with the same
// changes spread over 10 projects. Settings: BENCH_ROUNDS (7), BENCH_CHANGES (10000).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderPlanComment } from '../activities/multi-project-comment.ts';
import { render, splitComment } from '../activities/render.ts';
import { syntheticPlan } from '../test/helpers/synthetic-plan.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const CHANGES = Number(process.env.BENCH_CHANGES ?? 10_000);
const PROJECTS = 10;
/** activities/github.ts: GitHub's 65,536 characters less the room it keeps for its marker. */
const PART_LIMIT = 65_536 - 200;
const TARGET_MS = 2_000;

const ms = (t: number) => `${t.toFixed(0)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Writes a plan's files as terraform.ts plan() leaves them. */
function planFiles(dir: string, name: string, changes: number) {
  const plan = syntheticPlan(changes);
  const showJsonFile = join(dir, `${name}.json`);
  const planTextFile = join(dir, `${name}.txt`);
  writeFileSync(showJsonFile, JSON.stringify(plan.json));
  writeFileSync(planTextFile, plan.text);
  return { showJsonFile, planTextFile, jsonBytes: JSON.stringify(plan.json).length };
}

async function measure(label: string, make: () => Promise<string>): Promise<number> {
  const totals: number[] = [];
  for (let n = 1; n <= ROUNDS; n++) {
    const t0 = performance.now();
    const text = await make();
    const t1 = performance.now();
    const parts = splitComment(text, PART_LIMIT);
    const t2 = performance.now();
    const longest = Math.max(...parts.map((p) => p.length));
    if (longest > PART_LIMIT) throw new Error(`${label}: a part of ${longest} characters`);
    totals.push(t2 - t0);
    process.stdout.write(`  round ${n}: render ${ms(t1 - t0)}, split ${ms(t2 - t1)}, total ${ms(t2 - t0)}; ${text.length} characters in ${parts.length} parts, longest ${longest}\n`);
  }
  const m = median(totals);
  process.stdout.write(`${label}: median ${ms(m)}, worst ${ms(Math.max(...totals))} (target ≤ ${ms(TARGET_MS)})\n\n`);
  return m;
}

async function main(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), 'terrapin-bench-summary-'));
  try {
    const one = planFiles(tmp, 'one', CHANGES);
    const many = Array.from({ length: PROJECTS }, (_, i) => ({ name: `p${i}`, ...planFiles(tmp, `p${i}`, CHANGES / PROJECTS) }));
    process.stdout.write(
      `Change summary benchmark: ${CHANGES} resource changes + 200 outputs (show -json ${(one.jsonBytes / 1e6).toFixed(1)} MB), ${ROUNDS} rounds\n` +
        `  machine: ${cpus().length} CPUs, load average ${loadavg()[0]!.toFixed(2)} at start\n\n`,
    );
    const sha = 'abc1234'.padEnd(40, '0');
    const single = await measure('single-project plan comment', () =>
      render({
        template: 'plan',
        data: { sha, shortSha: 'abc1234', project: 'big', workspace: 'default', summaryLine: 'Plan: …', hasChanges: true },
        files: { planText: one.planTextFile, changeSummary: one.showJsonFile },
      }),
    );
    await measure(`multi-project plan comment (${PROJECTS} × ${CHANGES / PROJECTS})`, () =>
      renderPlanComment({
        sha,
        shortSha: 'abc1234',
        projects: many.map((p) => ({ name: p.name, dir: p.name, workspace: 'default', status: 'planned', planTextFile: p.planTextFile, showJsonFile: p.showJsonFile })),
      }),
    );
    if (single > TARGET_MS) process.exitCode = 1;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

if (import.meta.main) await main();
