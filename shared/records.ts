// Terrapin's custom search attributes: what a history view lists deploy and drift runs by. Registered on
// the embedded server at start; a cluster must have them registered (README), or runs record none.
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

export const SEARCH_ATTRIBUTES = {
  repository: defineSearchAttributeKey('TerrapinRepository', SearchAttributeType.KEYWORD),
  pr: defineSearchAttributeKey('TerrapinPr', SearchAttributeType.INT),
  project: defineSearchAttributeKey('TerrapinProject', SearchAttributeType.KEYWORD),
  trigger: defineSearchAttributeKey('TerrapinTrigger', SearchAttributeType.KEYWORD),
  actor: defineSearchAttributeKey('TerrapinActor', SearchAttributeType.KEYWORD),
  headSha: defineSearchAttributeKey('TerrapinHeadSha', SearchAttributeType.KEYWORD),
  outcome: defineSearchAttributeKey('TerrapinOutcome', SearchAttributeType.KEYWORD),
} as const;

export type RunTrigger = 'pr' | 'merge' | 'push' | 'drift' | 'manual';

export interface RunRecord {
  repository?: string;
  pr?: number;
  project?: string;
  trigger?: RunTrigger;
  actor?: string;
  headSha?: string;
  outcome?: string;
}

/** The typed pairs for a record; unset fields are left out (never cleared). */
export function searchAttributePairs(record: RunRecord): SearchAttributePair[] {
  const pairs: SearchAttributePair[] = [];
  const k = SEARCH_ATTRIBUTES;
  if (record.repository) pairs.push({ key: k.repository, value: record.repository });
  if (record.pr) pairs.push({ key: k.pr, value: record.pr });
  if (record.project) pairs.push({ key: k.project, value: record.project });
  if (record.trigger) pairs.push({ key: k.trigger, value: record.trigger });
  if (record.actor) pairs.push({ key: k.actor, value: record.actor });
  if (record.headSha) pairs.push({ key: k.headSha, value: record.headSha });
  if (record.outcome) pairs.push({ key: k.outcome, value: record.outcome });
  return pairs;
}
