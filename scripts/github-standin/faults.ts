// Fault injection: a seeded share of calls answered with a 502 (half of them after the change was made, as
// when a proxy drops GitHub's answer), a 403 secondary rate limit or a 429, both with retry-after.
import { error, type Reply } from './http.ts';
import type { FaultKind, FaultOptions } from './types.ts';

const FAULT_KINDS: FaultKind[] = ['502-before', '502-after', '403-rate-limit', '429'];

/** mulberry32: a small seeded generator; Math.random cannot be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultInjector {
  private faults: FaultOptions | undefined;
  private random: () => number;

  constructor(faults: FaultOptions | undefined) {
    this.faults = faults;
    this.random = seeded(faults?.seed ?? 1);
  }

  /** Turns fault injection on (or off with undefined), restarting the sequence from its seed. */
  set(faults: FaultOptions | undefined): void {
    this.faults = faults;
    this.random = seeded(faults?.seed ?? 1);
  }

  /** The fault due on this call, if any. */
  draw(): FaultKind | undefined {
    const { faults, random } = this;
    return faults && random() < faults.rate ? FAULT_KINDS[Math.floor(random() * FAULT_KINDS.length)]! : undefined;
  }

  reply(kind: FaultKind): Reply {
    const retryAfter = String(this.faults?.retryAfter ?? 1);
    if (kind === '403-rate-limit') {
      return { ...error(403, 'You have exceeded a secondary rate limit. Please wait a few minutes before you try again.'), headers: { 'retry-after': retryAfter } };
    }
    if (kind === '429') return { ...error(429, 'Too Many Requests'), headers: { 'retry-after': retryAfter } };
    return { status: 502, body: { message: 'Server Error' } };
  }
}
