// Terrapin's custom search attributes: what a history view lists project runs (and deploy queues) by. Registered on
// the embedded server at start; a cluster must have them registered (README), or runs record none.
import type { RunKind, RunTrigger } from './runs.ts';
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair, type SearchAttributeUpdatePair } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  repository: defineSearchAttributeKey('TerrapinRepository', SearchAttributeType.KEYWORD),
  // A keyword, not an int: the dev server allows three int attributes, and the counts below need them.
  pr: defineSearchAttributeKey('TerrapinPr', SearchAttributeType.KEYWORD),
  project: defineSearchAttributeKey('TerrapinProject', SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey('TerrapinTrigger', SearchAttributeType.KEYWORD),
  actor: defineSearchAttributeKey('TerrapinActor', SearchAttributeType.KEYWORD),
  headSha: defineSearchAttributeKey('TerrapinHeadSha', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('TerrapinOutcome', SearchAttributeType.KEYWORD),
  kind: defineSearchAttributeKey('TerrapinKind', SearchAttributeType.KEYWORD),
  approvers: defineSearchAttributeKey('TerrapinApprovers', SearchAttributeType.KEYWORD_LIST),
  add: defineSearchAttributeKey('TerrapinAdd', SearchAttributeType.INT),
  change: defineSearchAttributeKey('TerrapinChange', SearchAttributeType.INT),
  destroy: defineSearchAttributeKey('TerrapinDestroy', SearchAttributeType.INT),
  // What a running workflow waits for (`approval`), absent while it waits for nothing a person must do: the
  // PR, deploy and operator workflows keep it current, so that one visibility count is the approvals waiting.
  waiting: defineSearchAttributeKey('TerrapinWaiting', SearchAttributeType.KEYWORD),
} as const;

/** TerrapinWaiting's value while a workflow waits for an approval. */
export const WAITING_APPROVAL = 'approval';

/** The update that sets (or removes) TerrapinWaiting. */
export function waitingPair(waiting: boolean): SearchAttributeUpdatePair {
  return { key: SEARCH_ATTRIBUTES.waiting, value: waiting ? WAITING_APPROVAL : null };
}

export type { RunTrigger };

export interface RunRecord {
  repository?: string;
  pr?: number;
  project?: string;
  trigger?: RunTrigger;
  actor?: string;
  headSha?: string;
  outcome?: string;
  kind?: RunKind;
  approvers?: string[];
  counts?: { add: number; change: number; destroy: number };
}

/** The typed pairs for a record; unset fields are left out (never cleared). */
export function searchAttributePairs(record: RunRecord): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [];
  const k = SEARCH_ATTRIBUTES;
  if (record.repository) pairs.push({ key: k.repository, value: record.repository });
  if (record.pr) pairs.push({ key: k.pr, value: String(record.pr) });
  if (record.project) pairs.push({ key: k.project, value: record.project });
  if (record.trigger) pairs.push({ key: k.trigger, value: record.trigger });
  if (record.actor) pairs.push({ key: k.actor, value: record.actor });
  if (record.headSha) pairs.push({ key: k.headSha, value: record.headSha });
  if (record.outcome) pairs.push({ key: k.outcome, value: record.outcome });
  if (record.kind) pairs.push({ key: k.kind, value: record.kind });
  if (record.approvers?.length) pairs.push({ key: k.approvers, value: record.approvers });
  if (record.counts) {
    pairs.push({ key: k.add, value: record.counts.add }, { key: k.change, value: record.counts.change }, { key: k.destroy, value: record.counts.destroy });
  }
  return pairs;
}
