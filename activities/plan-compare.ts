// Compares a fresh plan with the one that was approved: the same resource actions with the same values
// may apply; anything else needs a fresh approval, shown as a list of what changed (actions, and which
// values, never the values themselves) and a diff of the plan texts (terraform masks sensitive values there).
import { readBotFile, writeBotFile } from './checkout-files.ts';
import { dirname, join } from 'node:path';
import { describePlanChanges, diffPlans, type PlanJson } from './plan-diff.ts';

interface PlanFiles {
  showJsonFile: string;
  planTextFile: string;
}

export interface PlanComparison {
  same: boolean;
  /** e.g. "terraform_data.db: update → replace", "terraform_data.app: values of input changed". */
  changes: string[];
  /** Unified diff of the plan texts (written next to the current plan), when they differ. */
  diffFile?: string;
}

export async function comparePlans({ approved, current }: { approved: PlanFiles; current: PlanFiles }): Promise<PlanComparison> {
  const json = async (file: string) => JSON.parse(await readBotFile(file)) as PlanJson;
  const [a, b] = [await json(approved.showJsonFile), await json(current.showJsonFile)];
  const changes = describePlanChanges(a, b);
  if (changes.length === 0) return { same: true, changes: [] };
  const diff = diffPlans(await readBotFile(approved.planTextFile), await readBotFile(current.planTextFile), {
    previous: 'approved plan',
    current: 'plan now',
  });
  const diffFile = join(dirname(current.planTextFile), 'changes-since-approval.diff');
  await writeBotFile(diffFile, diff);
  return { same: false, changes, diffFile };
}
