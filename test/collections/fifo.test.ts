import { describe, expect, it } from 'vitest';
import { Fifo } from '../../src/collections/fifo.js';
import { prng } from '../support/prng.js';

describe('Fifo', () => {
  it('takes items in the order they came, across the wrap-around of its ring', () => {
    const q = new Fifo<number>(4);
    for (let round = 0; round < 10; round++) {
      q.push(round * 3);
      q.push(round * 3 + 1);
      q.push(round * 3 + 2);
      expect(q.shift()).toBe(round * 3);
      expect(q.shift()).toBe(round * 3 + 1);
      expect(q.shift()).toBe(round * 3 + 2);
    }
    expect(q.capacity).toBe(4);
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    expect(q.peek()).toBeUndefined();
  });

  it('grows when full, keeping the order of items that had wrapped around', () => {
    const q = new Fifo<number>(4);
    q.push(0);
    q.push(1);
    q.shift();
    q.shift(); // the head is now in the middle of the ring
    for (let i = 0; i < 11; i++) q.push(i);
    expect(q.capacity).toBe(16);
    expect([...q]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(q.at(0)).toBe(0);
    expect(q.at(10)).toBe(10);
    expect(q.at(11)).toBeUndefined();
    expect(q.at(-1)).toBeUndefined();
  });

  it('requeues items at the head in their order, growing if it must', () => {
    const q = new Fifo<string>(4);
    q.push('c');
    q.push('d');
    q.requeue(['a', 'b']);
    expect(q.peek()).toBe('a');
    q.requeue(['x', 'y', 'z']);
    expect(q.drain()).toEqual(['x', 'y', 'z', 'a', 'b', 'c', 'd']);
    expect(q.length).toBe(0);
    q.requeue([]);
    expect(q.length).toBe(0);
  });

  it('inserts at any place, and refuses a place past the tail', () => {
    const q = new Fifo<number>(4);
    q.push(1);
    q.push(3);
    q.insert(1, 2);
    q.insert(0, 0);
    q.insert(4, 4);
    expect([...q]).toEqual([0, 1, 2, 3, 4]);
    expect(() => q.insert(6, 9)).toThrow(RangeError);
  });

  it('retains the items a predicate keeps, in order', () => {
    const q = new Fifo<number>(4);
    for (let i = 0; i < 6; i++) q.push(i);
    q.shift();
    q.shift();
    q.push(6);
    q.push(7); // wrapped around
    expect(q.retain((n) => n % 2 === 1)).toBe(3);
    expect([...q]).toEqual([3, 5, 7]);
    q.push(8);
    expect(q.drain()).toEqual([3, 5, 7, 8]);
  });

  it('gives back the memory of a grown ring on clear', () => {
    const q = new Fifo<number>(8);
    for (let i = 0; i < 100; i++) q.push(i);
    expect(q.capacity).toBe(128);
    q.clear();
    expect(q.capacity).toBe(8);
    expect(q.length).toBe(0);
    q.push(1);
    expect(q.shift()).toBe(1);
  });

  it('behaves as an array under random operations', () => {
    for (const seed of [1, 2, 42]) {
      const rand = prng(seed);
      const q = new Fifo<number>(4);
      const model: number[] = [];
      const wrong: string[] = [];
      const same = (what: string, got: unknown, want: unknown) => {
        if (got !== want) wrong.push(`seed ${seed}: ${what} ${String(got)}, not ${String(want)}`);
      };
      let next = 0;
      for (let step = 0; step < 2000; step++) {
        const r = rand();
        if (r < 0.4) {
          q.push(next);
          model.push(next++);
        } else if (r < 0.7) {
          same('shift', q.shift(), model.shift());
        } else if (r < 0.78) {
          const items = [next++, next++];
          q.requeue(items);
          model.unshift(...items);
        } else if (r < 0.86) {
          const at = Math.floor(rand() * (model.length + 1));
          q.insert(at, next);
          model.splice(at, 0, next++);
        } else if (r < 0.9) {
          const m = 2 + Math.floor(rand() * 3);
          q.retain((n) => n % m !== 0);
          model.splice(0, model.length, ...model.filter((n) => n % m !== 0));
        } else if (r < 0.91) {
          same('drain', q.drain().join(), model.splice(0).join());
        } else {
          const i = Math.floor(rand() * (model.length + 1));
          same(`at(${i})`, q.at(i), model[i]);
        }
        same('length', q.length, model.length);
        same('peek', q.peek(), model[0]);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      expect([...q]).toEqual(model);
    }
  });
});
