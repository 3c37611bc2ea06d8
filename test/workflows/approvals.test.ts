// The pure pieces behind "an approval is one person's decision about one plan".
import { describe, expect, it } from 'vitest';
import { commitLogins } from '../../activities/github.ts';
import { createdAt } from '../../app/events/issue-comment-created.ts';
import { approved, destroyNeeds, evaluate } from '../../workflows/requirements.ts';
import { commandKey } from '../../shared/contracts.ts';

describe('commandKey', () => {
  it('keys comments and reviews by their own id, whatever the delivery id', () => {
    const comment = { type: 'command', deliveryId: 'a', commentId: 7 };
    expect(commandKey(comment)).toBe('comment:7');
    const resent = { ...comment, deliveryId: 'b' };
    expect(commandKey(resent)).toBe('comment:7');
    expect(commandKey({ type: 'bad-command', commentId: 7 })).toBe('comment:7');
    expect(commandKey({ type: 'command', reviewId: 7 })).toBe('review:7');
  });

  it('has no key for buttons and other events', () => {
    expect(commandKey({ type: 'command' })).toBeUndefined();
    expect(commandKey({ type: 'pr-updated', commentId: 7 })).toBeUndefined();
  });
});

describe('commitLogins', () => {
  it('lists authors and committers once, without web-flow and unlinked accounts', () => {
    const commits = [
      { author: { login: 'Mallory' }, committer: { login: 'web-flow' } },
      { author: null, committer: { login: 'dave' } },
      { author: { login: 'mallory' }, committer: null },
      { author: { login: 'WEB-FLOW' }, committer: { login: 'Dave' } },
    ];
    expect(commitLogins(commits)).toEqual(['mallory', 'Dave']);
  });
});

describe('createdAt', () => {
  it('normalises GitHub timestamps to ISO and leaves out what is missing or unreadable', () => {
    expect(createdAt('2021-08-19T12:16:32.000-04:00')).toEqual({ createdAt: '2021-08-19T16:16:32.000Z' });
    expect(createdAt('2026-11-30T03:00:00Z')).toEqual({ createdAt: '2026-11-30T03:00:00.000Z' });
    expect(createdAt(undefined)).toEqual({});
    expect(createdAt('yesterday')).toEqual({});
  });
});

describe('the author set in apply requirements', () => {
  const ctx = (approvers: string[], authors?: string[]) => ({
    author: 'alice',
    authors,
    approvals: approvers.map((login) => ({ login, teams: [] })),
    mergeable: true,
    baseSha: '',
    mergeBaseSha: '',
    plan: { destroy: 1 },
  });

  it('counts no approval from a pusher or committer, in any letter case', () => {
    const [result] = evaluate([approved({ count: 1 })], ctx(['Mallory'], ['mallory']));
    expect(result).toMatchObject({ status: 'unmet', data: { approvers: [] } });
    const [destroy] = evaluate([destroyNeeds({ approvals: 1 })], ctx(['mallory'], ['MALLORY']));
    expect(destroy!.status).toBe('unmet');
  });

  it('counts everyone else, once', () => {
    const [result] = evaluate([approved({ count: 2 })], ctx(['bob', 'BOB', 'erin'], ['mallory']));
    expect(result).toMatchObject({ status: 'met', data: { approvers: ['bob', 'erin'] } });
  });

  it('without an author set, only the opener is left out (as before)', () => {
    const [result] = evaluate([approved({ count: 1 })], ctx(['alice']));
    expect(result!.status).toBe('unmet');
  });
});
