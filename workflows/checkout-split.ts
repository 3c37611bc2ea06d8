// Runs recorded before the checkout activity was split (into checkout, selectProjects, policyAt and
// permissionsAt) scheduled `checkout` for all of it, with the full selection as its result. Replaying
// them must schedule the same activity at the same points: every call of a new one asks patched() first.
import { patched } from '@temporalio/workflow';
import type { ProjectSelection, SelectProjectsInput } from '../shared/activity-contracts.ts';

const CHECKOUT_SPLIT = 'checkout-split';

/** False only while replaying a run recorded before the split. */
export const checkoutSplit = (): boolean => patched(CHECKOUT_SPLIT);

interface WithCheckout {
  checkout(input: never): Promise<unknown>;
  selectProjects(input: SelectProjectsInput): Promise<ProjectSelection>;
}

/** The `checkout` activity as it was before the split, for replaying those runs only. */
export function checkoutBeforeSplit(proxy: WithCheckout): (input: SelectProjectsInput) => Promise<ProjectSelection> {
  return proxy.checkout as unknown as (input: SelectProjectsInput) => Promise<ProjectSelection>;
}

/** An activity proxy whose selectProjects is the old `checkout` when replaying a run from before the split. */
export function withCheckoutSplit<T extends WithCheckout>(proxy: T): T {
  return new Proxy(proxy, {
    get(target, name, receiver) {
      if (name !== 'selectProjects') return Reflect.get(target, name, receiver);
      return (input: SelectProjectsInput) => (checkoutSplit() ? target.selectProjects(input) : checkoutBeforeSplit(target)(input));
    },
  });
}
