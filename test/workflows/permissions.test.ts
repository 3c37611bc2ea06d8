import { describe, expect, it } from 'vitest';
import { DEFAULT_PERMISSIONS, mayRun, type ActorFacts } from '../../workflows/permissions.ts';

const actor = (over: Partial<ActorFacts> = {}): ActorFacts => ({ login: 'bob', permission: 'write', teams: [], isAuthor: false, ...over });

describe('mayRun', () => {
  it('defaults: writers plan, apply and unlock; writers other than the author approve', () => {
    for (const command of ['plan', 'apply', 'unlock'] as const) {
      expect(mayRun(DEFAULT_PERMISSIONS[command], actor({ isAuthor: true }))).toEqual({ allowed: true });
      expect(mayRun(DEFAULT_PERMISSIONS[command], actor({ permission: 'read' }))).toEqual({ allowed: false, because: 'level', required: 'write' });
    }
    expect(mayRun(DEFAULT_PERMISSIONS.approve, actor())).toEqual({ allowed: true });
    expect(mayRun(DEFAULT_PERMISSIONS.approve, actor({ isAuthor: true }))).toEqual({ allowed: false, because: 'author' });
    expect(mayRun(DEFAULT_PERMISSIONS.approve, actor({ permission: 'none' }))).toMatchObject({ allowed: false, because: 'level' });
  });

  it('a level above write, and admins passing any level', () => {
    const rule = { ...DEFAULT_PERMISSIONS.apply, level: 'admin' as const };
    expect(mayRun(rule, actor())).toEqual({ allowed: false, because: 'level', required: 'admin' });
    expect(mayRun(rule, actor({ permission: 'admin' }))).toEqual({ allowed: true });
    expect(mayRun({ ...rule, level: 'read' }, actor({ permission: 'read' }))).toEqual({ allowed: true });
  });

  it('users and teams narrow who may, case-insensitively for logins; the level still applies', () => {
    const rule = { ...DEFAULT_PERMISSIONS.approve, users: ['Carol'], teams: ['acme/sre'] };
    expect(mayRun(rule, actor({ login: 'carol' }))).toEqual({ allowed: true });
    expect(mayRun(rule, actor({ teams: ['acme/sre'] }))).toEqual({ allowed: true });
    expect(mayRun(rule, actor())).toEqual({ allowed: false, because: 'not-listed', users: ['Carol'], teams: ['acme/sre'] });
    expect(mayRun(rule, actor({ login: 'carol', permission: 'read' }))).toMatchObject({ because: 'level' });
    expect(mayRun(rule, actor({ login: 'carol', isAuthor: true }))).toEqual({ allowed: false, because: 'author' });
  });
});
