// The strict expectation API: tests hold the stand-in to the calls they expect, as strictly as nock mocks.
import { INSTALLATION_TOKEN_ROUTE, type CallExpectation, type CallReport, type ExpectOptions, type RecordedCall } from './types.ts';

const bounds = (e: CallExpectation) =>
  typeof e.times === 'number' || e.times === undefined
    ? { min: e.times ?? 1, max: e.times ?? 1 }
    : { min: e.times.min ?? 0, max: e.times.max ?? Infinity };

const labelOf = (e: CallExpectation) => e.label ?? `${e.route}${e.path ? ` ${String(e.path)}` : ''}`;

const describeCall = (c: RecordedCall) =>
  `${c.method} ${c.path}${Object.keys(c.query).length ? `?${new URLSearchParams(c.query)}` : ''} → ${c.status}${c.fault ? ` (fault ${c.fault})` : ''}`;

/** A body matcher that throws (reads a field of an absent body) does not match. */
function safely(fn: () => boolean): boolean {
  try {
    return fn();
  } catch {
    return false;
  }
}

const matchesExpectation = (e: CallExpectation, c: RecordedCall) =>
  c.route === e.route &&
  (e.path === undefined || (typeof e.path === 'string' ? c.path === e.path : e.path.test(c.path))) &&
  (e.body === undefined || safely(() => e.body!(c.body)));

const problems = (r: CallReport) => [
  ...r.missing.map((m) => `missing: ${m}`),
  ...r.surplus.map((m) => `too many: ${m}`),
  ...r.unexpected.map((m) => `unexpected: ${m}`),
];

/** Missing and surplus calls per expectation, from the count of calls each got. */
function shortfalls(expectations: CallExpectation[], counts: number[]): Pick<CallReport, 'missing' | 'surplus'> {
  const missing: string[] = [];
  const surplus: string[] = [];
  expectations.forEach((e, i) => {
    const { min, max } = bounds(e);
    const n = counts[i]!;
    const want = min === max ? `${min}` : `${min}..${max === Infinity ? '' : max}`;
    if (n < min) missing.push(`${labelOf(e)}: ${n} of ${want}`);
    if (n > max) surplus.push(`${labelOf(e)}: ${n}, expected ${want}`);
  });
  return { missing, surplus };
}

export class CallLedger {
  private readonly calls: readonly RecordedCall[];
  private expectations: CallExpectation[] | undefined;
  private opts: Required<ExpectOptions> = { anyTokens: true, countFaultsThatChangedNothing: false };
  private start = 0;

  constructor(calls: readonly RecordedCall[]) {
    this.calls = calls;
  }

  expectExactly(more: CallExpectation[], opts: ExpectOptions = {}): void {
    if (!this.expectations) {
      this.expectations = [];
      this.start = this.calls.length;
    }
    this.expectations.push(...more);
    this.opts = { ...this.opts, ...opts };
  }

  /** Whether a call counts at all: token fetches and faults that changed nothing may be left out. */
  private counted(c: RecordedCall): boolean {
    if (c.route === INSTALLATION_TOKEN_ROUTE && this.opts.anyTokens) return false;
    return !(c.fault && c.fault !== '502-after' && !this.opts.countFaultsThatChangedNothing);
  }

  verifyCalls(): CallReport {
    const expectations = this.expectations;
    if (!expectations) throw new Error('verifyCalls: no expectations set (call expectExactly first)');
    const counts = expectations.map(() => 0);
    const unexpected: string[] = [];
    for (const c of this.calls.slice(this.start).filter((call) => this.counted(call))) {
      const candidates = expectations.map((e, i) => (matchesExpectation(e, c) ? i : -1)).filter((i) => i >= 0);
      if (candidates.length === 0) {
        unexpected.push(`${describeCall(c)}${c.route ? '' : ' (no such route in the stand-in)'}`);
        continue;
      }
      const room = candidates.find((i) => counts[i]! < bounds(expectations[i]!).max);
      counts[room ?? candidates[0]!]!++;
    }
    return { ...shortfalls(expectations, counts), unexpected, counts: expectations.map((e, i) => ({ label: labelOf(e), count: counts[i]! })) };
  }

  assertExactly(): void {
    const found = problems(this.verifyCalls());
    if (found.length) throw new Error(`GitHub stand-in: calls other than expected:\n${found.join('\n')}`);
  }

  async settled(timeoutMs = 90_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const report = this.verifyCalls();
      if (report.missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`GitHub stand-in: calls still expected after ${timeoutMs} ms:\n${problems(report).join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
