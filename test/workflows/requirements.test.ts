import { describe, expect, it } from 'vitest';
import { render } from '../../activities/render.ts';
import { allMet, approved, destroyNeeds, evaluate, mergeable, policiesPassed, undiverged, type Requirement, type RequirementContext, DEFAULT_REQUIREMENTS, factsNeeded, requirementsFrom } from '../../workflows/requirements.ts';

const BASE = 'a'.repeat(40);
const OLD_BASE = 'b'.repeat(40);

const context = (over: Partial<RequirementContext> = {}): RequirementContext => ({
  author: 'alice',
  approvals: [],
  mergeable: true,
  baseSha: BASE,
  mergeBaseSha: BASE,
  plan: { destroy: 0 },
  ...over,
});

const approval = (login: string, ...teams: string[]) => ({ login, teams });

/** The user-facing text of a requirement's result, rendered from its template as the bot would. */
async function check(requirement: Requirement, ctx: RequirementContext): Promise<[string, string]> {
  const r = requirement(ctx);
  return [r.status, (await render({ template: r.template, data: r.data })).trim()];
}

describe('approved', () => {
  const cases: [string, Requirement, Partial<RequirementContext>, [string, string]][] = [
    ['no approvals', approved(), {}, ['unmet', 'needs 1 approval from writers other than @alice; has 0']],
    ['one approval', approved(), { approvals: [approval('bob')] }, ['met', 'approved by @bob; needs 1']],
    [
      'short of the count',
      approved({ count: 2 }),
      { approvals: [approval('bob')] },
      ['unmet', 'needs 2 approvals from writers other than @alice; has 1 (@bob)'],
    ],
    [
      "the author's own approval does not count (any case), repeats count once",
      approved({ count: 2 }),
      { approvals: [approval('Alice'), approval('bob'), approval('BOB')] },
      ['unmet', 'needs 2 approvals from writers other than @alice; has 1 (@bob)'],
    ],
    [
      'enough approvals',
      approved({ count: 2 }),
      { approvals: [approval('bob'), approval('carol'), approval('dave')] },
      ['met', 'approved by @bob, @carol, @dave; needs 2'],
    ],
    [
      'only listed users count',
      approved({ users: ['@carol', 'dave'] }),
      { approvals: [approval('bob')] },
      ['unmet', 'needs 1 approval from @carol, @dave, other than @alice; has 0; not counted: @bob'],
    ],
    [
      'a listed user, case-insensitively',
      approved({ users: ['carol'] }),
      { approvals: [approval('bob'), approval('Carol')] },
      ['met', 'approved by @Carol; needs 1'],
    ],
    [
      'only team members count',
      approved({ count: 2, teams: ['acme/platform', 'acme/sre'] }),
      { approvals: [approval('bob', 'acme/web'), approval('erin', 'ACME/SRE')] },
      ['unmet', 'needs 2 approvals from members of acme/platform, acme/sre, other than @alice; has 1 (@erin); not counted: @bob'],
    ],
    [
      'users or teams',
      approved({ users: ['carol'], teams: ['acme/platform'] }),
      {},
      ['unmet', 'needs 1 approval from @carol or members of acme/platform, other than @alice; has 0'],
    ],
    [
      'a team member when users and teams are given',
      approved({ users: ['carol'], teams: ['acme/platform'] }),
      { approvals: [approval('frank', 'acme/platform')] },
      ['met', 'approved by @frank; needs 1'],
    ],
  ];
  it.each(cases)('%s', async (_, requirement, over, expected) => {
    expect(await check(requirement, context(over))).toEqual(expected);
  });
});

describe('mergeable', () => {
  it.each([
    [true, 'met', 'no conflicts with the base branch'],
    [false, 'unmet', 'conflicts with the base branch: resolve them, then plan again'],
    [null, 'unmet', 'GitHub is still checking for conflicts with the base branch; try again in a moment'],
  ] as const)('mergeable %s', async (value, status, text) => {
    expect(await check(mergeable, context({ mergeable: value }))).toEqual([status, text]);
  });
});

describe('undiverged', () => {
  it('is met when the branch starts from the base head', async () => {
    expect(await check(undiverged, context())).toEqual(['met', 'up to date with the base branch (aaaaaaa)']);
  });
  it('names both commits when the base moved on', async () => {
    expect(await check(undiverged, context({ mergeBaseSha: OLD_BASE }))).toEqual([
      'unmet',
      'the base branch has moved on (now aaaaaaa; this branch starts from bbbbbbb): merge or rebase, then plan again',
    ]);
  });
});

describe('destroyNeeds', () => {
  const twoForDestroy = destroyNeeds({ approvals: 2 });
  it.each([
    [0, [], 'met', 'the plan destroys nothing'],
    [1, [approval('bob')], 'unmet', 'the plan destroys 1 resource, which needs 2 approvals from writers other than @alice; has 1 (@bob)'],
    [3, [], 'unmet', 'the plan destroys 3 resources, which needs 2 approvals from writers other than @alice; has 0'],
    [3, [approval('alice'), approval('bob'), approval('carol')], 'met', 'the plan destroys 3 resources, which has 2 approvals (@bob, @carol); needs 2'],
  ] as const)('destroying %i with %j', async (destroy, approvals, status, text) => {
    expect(await check(twoForDestroy, context({ plan: { destroy }, approvals: [...approvals] }))).toEqual([status, text]);
  });
  it('says "1 approval" when one is needed', async () => {
    const [, text] = await check(destroyNeeds({ approvals: 1 }), context({ plan: { destroy: 2 } }));
    expect(text).toBe('the plan destroys 2 resources, which needs 1 approval from writers other than @alice; has 0');
  });
});

describe('evaluate', () => {
  it('returns every result in order, met or not', () => {
    const results = evaluate([approved(), mergeable, undiverged, destroyNeeds({ approvals: 2 })], context({ mergeable: false }));
    expect(results.map((r) => [r.name, r.status])).toEqual([
      ['approved', 'unmet'],
      ['mergeable', 'unmet'],
      ['undiverged', 'met'],
      ['destroy-needs', 'met'],
    ]);
    expect(allMet(results)).toBe(false);
    expect(allMet(evaluate([mergeable, undiverged], context()))).toBe(true);
  });
  it('keeps result data serialisable for workflow history', () => {
    const results = evaluate([approved({ teams: ['acme/sre'] }), mergeable, undiverged, destroyNeeds({ approvals: 1 })], context());
    expect(JSON.parse(JSON.stringify(results))).toEqual(results);
  });
});

describe('requirements from .terrapin.yml', () => {
  const config = [
    { kind: 'approved' as const, count: 2, users: [], teams: ['acme/platform', 'acme/sre'] },
    { kind: 'mergeable' as const },
    { kind: 'destroyNeeds' as const, approvals: 3 },
  ];

  it('maps each configured requirement to its function, in order', () => {
    const ctx = { author: 'alice', approvals: [{ login: 'bob', teams: ['acme/sre'] }], mergeable: true, baseSha: 'x', mergeBaseSha: 'x', plan: { destroy: 1 } };
    expect(evaluate(requirementsFrom(config), ctx).map((r) => [r.name, r.status])).toEqual([
      ['approved', 'unmet'],
      ['mergeable', 'met'],
      ['destroy-needs', 'unmet'],
    ]);
  });

  it('asks GitHub only for the facts the configured requirements read', () => {
    expect(factsNeeded(config)).toEqual({ mergeable: true, divergence: false, teams: ['acme/platform', 'acme/sre'] });
    expect(factsNeeded(DEFAULT_REQUIREMENTS)).toEqual({ mergeable: false, divergence: false, teams: [] });
    expect(factsNeeded([{ kind: 'undiverged' }])).toEqual({ mergeable: false, divergence: true, teams: [] });
  });
});

describe('policiesPassed', () => {
  it('is met with no failed check, or once a policy owner approved; the reply names the checks and the command', async () => {
    expect(policiesPassed({ failed: [], approvedBy: [] }).status).toBe('met');
    const unmet = policiesPassed({ failed: ['checkov', 'no-destroy'], approvedBy: [], project: 'network' });
    expect(unmet.status).toBe('unmet');
    const text = await render({ template: 'replies/requirements-unmet', data: { shortSha: 'abc1234', unmet: [unmet] } });
    expect(text).toContain('- **policies**: policy checks failed: `checkov`, `no-destroy`; a policy owner must comment `/approve-policies -p network` (or push a fix)');
    const met = policiesPassed({ failed: ['checkov'], approvedBy: ['carol'] });
    expect(met.status).toBe('met');
    expect(await render({ template: 'requirements/policies', data: met.data })).toBe('policy checks `checkov` failed; approved by @carol\n');
  });
});
