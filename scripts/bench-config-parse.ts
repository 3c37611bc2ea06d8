// `node scripts/bench-config-parse.ts`: how long parseRepoConfigFile takes on a large `.terrapin.yml`
// (BENCH_PROJECTS projects, 500 by default, each with most keys set) and on one with an error in every
// project. Prints the first parse in the process (which compiles the schema), then the median and fastest
// of BENCH_ROUNDS (30) parses after it, in CPU time of this process (steadier than wall time on a busy host).
import { parseRepoConfigFile } from '../activities/repo-config/index.ts';

const PROJECTS = Number(process.env.BENCH_PROJECTS ?? 500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 30);

function project(i: number, broken: boolean): string {
  const upstream = i > 0 ? `\n    dependsOn: [p${i - 1}]\n    inputs:\n      vpc_id: p${i - 1}.outputs.vpc_id` : '';
  return `  - name: p${i}
    dir: infra/p${i}
    workspace: ${broken ? 'bad/workspace' : 'prod'}
    autoplan: { enabled: true, whenModified: ["**/*.tf", "../modules/**/*.tf"] }${upstream}
    applyRequirements: [approved, mergeable, { approved: { count: 2, teams: [acme/sre] } }, { destroyNeeds: { approvals: 2 } }]
    hooks: { prePlan: ./lint.sh, postPlan: [./cost.sh, ./notify.sh] }
    env: { TF_VAR_stage: "prod", AWS_REGION: eu-west-1 }
    when:
      - { baseBranch: "release/*", applyRequirements: [approved] }
    drift: { schedule: "0 ${i % 24} * * 1-5", reconcile: false }`;
}

const file = (broken: boolean) =>
  `version: 1\nparallelism: 4\ndefaults:\n  terraform: tofu\n  lock: onApply\nprojects:\n${Array.from({ length: PROJECTS }, (_, i) => project(i, broken)).join('\n')}\n`;

function measure(label: string, text: string, expectErrors: boolean): void {
  const times: number[] = [];
  for (let i = 0; i <= ROUNDS; i++) {
    const start = process.cpuUsage();
    const { errors } = parseRepoConfigFile(text, { cpuCount: 2 });
    const used = process.cpuUsage(start);
    times.push((used.user + used.system) / 1000);
    if ((errors.length > 0) !== expectErrors) throw new Error(`${label}: unexpected result, ${errors.length} errors (${errors[0]?.message})`);
  }
  const [first, ...rest] = times;
  rest.sort((a, b) => a - b);
  const ms = (n: number) => `${n.toFixed(1)} ms`;
  console.log(`${label.padEnd(28)} ${(text.length / 1024).toFixed(0).padStart(4)} KiB  first ${ms(first).padStart(9)}  median ${ms(rest[Math.floor(rest.length / 2)]).padStart(9)}  fastest ${ms(rest[0]).padStart(9)}`);
}

console.log(`parseRepoConfigFile, ${PROJECTS} projects, ${ROUNDS} rounds after the first (node ${process.version})`);
measure('valid file', file(false), false);
measure('an error in every project', file(true), true);
