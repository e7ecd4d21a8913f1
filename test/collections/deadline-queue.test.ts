import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DeadlineQueue } from '../../src/collections/deadline-queue.js';
import { prng } from '../support/prng.js';

class Entry {
  cancelled = false;
  constructor(
    readonly name: string,
    readonly deadline: number,
  ) {}
}

function queue(opts: { resolutionMs?: number; keepAlive?: boolean } = {}) {
  const expired: string[] = [];
  const q = new DeadlineQueue<Entry>({
    expire: (e) => expired.push(e.name),
    cancelled: (e) => e.cancelled,
    now: () => Date.now(),
    ...opts,
  });
  return { q, expired };
}

describe('DeadlineQueue', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('expires entries at their deadline with one timer, oldest first', () => {
    const { q, expired } = queue();
    const t = Date.now();
    q.add(new Entry('a', t + 100));
    q.add(new Entry('b', t + 100));
    q.add(new Entry('c', t + 250));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a', 'b']);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(150);
    expect(expired).toEqual(['a', 'b', 'c']);
    expect(q.length).toBe(0);
    expect(q.armed).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('drops cancelled entries without a call, and they do not hold the timer back', () => {
    const { q, expired } = queue();
    const t = Date.now();
    const a = new Entry('a', t + 10);
    q.add(a);
    q.add(new Entry('b', t + 20));
    a.cancelled = true;
    vi.advanceTimersByTime(10);
    expect(expired).toEqual([]);
    expect(q.length).toBe(1);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['b']);
  });

  it('places an entry due earlier than the tail by its deadline, and re-arms for a new head', () => {
    const { q, expired } = queue();
    const t = Date.now();
    q.add(new Entry('late', t + 500));
    q.add(new Entry('mid', t + 300));
    q.add(new Entry('early', t + 100));
    q.add(new Entry('mid2', t + 300));
    expect([...q].map((e) => e.name)).toEqual(['early', 'mid', 'mid2', 'late']);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual(['early']);
    vi.advanceTimersByTime(400);
    expect(expired).toEqual(['early', 'mid', 'mid2', 'late']);
  });

  it('sweeps on a grid of resolutionMs, at the first step on or after a deadline', () => {
    const { q, expired } = queue({ resolutionMs: 50 });
    const t = Date.now(); // a multiple of 50
    q.add(new Entry('a', t + 10));
    q.add(new Entry('b', t + 20));
    q.add(new Entry('c', t + 50));
    q.add(new Entry('d', t + 60));
    vi.advanceTimersByTime(49);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a', 'b', 'c']);
    vi.advanceTimersByTime(49);
    expect(expired).toEqual(['a', 'b', 'c']);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['a', 'b', 'c', 'd']);
  });

  it('shifts and drains entries still wanted before their deadline', () => {
    const { q, expired } = queue();
    const t = Date.now();
    const a = new Entry('a', t + 10);
    q.add(a);
    q.add(new Entry('b', t + 10));
    q.add(new Entry('c', t + 10));
    a.cancelled = true;
    expect(q.peek()?.name).toBe('b');
    expect(q.shift()?.name).toBe('b');
    expect(q.drain().map((e) => e.name)).toEqual(['c']);
    expect(q.armed).toBe(false);
    vi.advanceTimersByTime(100);
    expect(expired).toEqual([]);
  });

  it('lets expire add entries and sweeps them in the same pass when due', () => {
    const expired: string[] = [];
    const q: DeadlineQueue<Entry> = new DeadlineQueue<Entry>({
      expire: (e, now) => {
        expired.push(e.name);
        if (e.name === 'a') {
          q.add(new Entry('again', now));
          q.add(new Entry('later', now + 50));
        }
      },
    });
    q.add(new Entry('a', Date.now() + 10));
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['a', 'again']);
    expect(q.armed).toBe(true);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual(['a', 'again', 'later']);
  });

  it('compacts cancelled entries anywhere, and clears', () => {
    const { q, expired } = queue();
    const t = Date.now();
    const entries = [0, 1, 2, 3, 4].map((i) => new Entry(`e${i}`, t + 10 * (i + 1)));
    for (const e of entries) q.add(e);
    entries[1].cancelled = true;
    entries[3].cancelled = true;
    expect(q.compact()).toBe(2);
    expect([...q].map((e) => e.name)).toEqual(['e0', 'e2', 'e4']);
    q.clear();
    expect(q.armed).toBe(false);
    vi.advanceTimersByTime(1000);
    expect(expired).toEqual([]);
  });

  it('drops noted tombstones once they make up most of the queue, long before their deadline', () => {
    const { q, expired } = queue();
    const t = Date.now();
    const keep = new Entry('keep', t + 60_000);
    q.add(keep);
    for (let i = 0; i < 1000; i++) {
      const e = new Entry(`e${i}`, t + 60_000);
      q.add(e);
      e.cancelled = true;
      q.noteCancelled();
    }
    expect(q.length).toBeLessThan(140);
    expect([...q][0]).toBe(keep);
    vi.advanceTimersByTime(60_000);
    expect(expired).toEqual(['keep']);
    expect(q.length).toBe(0);
  });

  it('never arms a timer for an entry without a deadline', () => {
    const { q, expired } = queue();
    q.add(new Entry('forever', Number.POSITIVE_INFINITY));
    expect(q.armed).toBe(false);
    q.add(new Entry('soon', Date.now() + 5));
    expect(q.armed).toBe(true);
    vi.advanceTimersByTime(10);
    expect(expired).toEqual(['soon']);
    expect(q.armed).toBe(false);
    expect(q.length).toBe(1);
  });

  it('reaches a deadline past the longest timer delay in several waits', () => {
    const { q, expired } = queue();
    q.add(new Entry('far', Date.now() + 2 ** 31 + 1000));
    vi.advanceTimersByTime(2 ** 31 - 1);
    expect(expired).toEqual([]);
    expect(q.armed).toBe(true);
    vi.advanceTimersByTime(1001);
    expect(expired).toEqual(['far']);
  });

  it('expires every entry exactly once, by its deadline, under random adds and cancellations', () => {
    for (const seed of [7, 8, 9]) {
      const rand = prng(seed);
      const { q, expired } = queue();
      const pending = new Map<string, Entry>();
      const cancelled = new Set<string>();
      const wrong: string[] = [];
      let seen = 0;
      for (let step = 0; step < 1000; step++) {
        const r = rand();
        if (r < 0.6) {
          const e = new Entry(`s${step}`, Date.now() + Math.floor(rand() * 200));
          q.add(e);
          pending.set(e.name, e);
        } else if (r < 0.75 && pending.size > 0) {
          const names = [...pending.keys()];
          const name = names[Math.floor(rand() * names.length)];
          pending.get(name)!.cancelled = true;
          pending.delete(name);
          cancelled.add(name);
        } else {
          vi.advanceTimersByTime(Math.floor(rand() * 20));
          const now = Date.now();
          let last = Number.NEGATIVE_INFINITY;
          for (const name of expired.slice(seen)) {
            const e = pending.get(name);
            if (e === undefined) wrong.push(`${name} expired though cancelled or expired before`);
            else if (e.deadline > now) wrong.push(`${name} expired ${e.deadline - now} ms early`);
            else if (e.deadline < last) wrong.push(`${name} expired out of deadline order`);
            else last = e.deadline;
            pending.delete(name);
          }
          seen = expired.length;
          // Due entries are swept once the timer's resolution (1 ms) has passed.
          for (const e of pending.values())
            if (e.deadline < now)
              wrong.push(`${e.name} still waits ${now - e.deadline} ms after its deadline`);
        }
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      vi.advanceTimersByTime(1000);
      const rest = expired.slice(seen);
      expect(new Set(rest)).toEqual(new Set(pending.keys()));
      expect(expired.filter((name) => cancelled.has(name))).toEqual([]);
      expect(q.length).toBe(0);
    }
  });
});

describe('DeadlineQueue timer', () => {
  it('is unref’d, unless asked to keep the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setTimeout');
    try {
      const { q } = queue();
      q.add(new Entry('a', Date.now() + 60_000));
      const timer = spy.mock.results.at(-1)!.value as NodeJS.Timeout;
      expect(timer.hasRef()).toBe(false);
      q.clear();
      const held = queue({ keepAlive: true }).q;
      held.add(new Entry('b', Date.now() + 60_000));
      const kept = spy.mock.results.at(-1)!.value as NodeJS.Timeout;
      expect(kept.hasRef()).toBe(true);
      held.clear();
    } finally {
      spy.mockRestore();
    }
  });
});
