/** Handshake reassembly: fragments in any order and overlap, within the per-peer and shared budgets. */
import { describe, expect, it } from 'vitest';
import { HandshakeHeader } from '../../src/dtls/protocol/handshake.js';
import { FragmentResult, MAX_RUNS, Reassembler, ReassemblyBudget } from '../../src/dtls/server/reassembly.js';

describe('handshake reassembly', () => {
  function fragment(
    seq: number,
    body: Buffer,
    offset: number,
    length: number,
    type = 16,
  ): [HandshakeHeader, Buffer] {
    const buf = body.subarray(offset, offset + length);
    const h = new HandshakeHeader();
    Object.assign(h, {
      type,
      length: body.length,
      messageSeq: seq,
      fragmentOffset: offset,
      fragmentLength: length,
      bodyOffset: 0,
    });
    return [h, Buffer.from(buf)];
  }

  it('reassembles overlapping, repeated and reordered fragments', () => {
    const body = Buffer.from('0123456789abcdefghij');
    const r = new Reassembler(2, 1000, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(2, body, 10, 10))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, body, 4, 8))).toBe(FragmentResult.Accepted);
    expect(r.add(...fragment(2, body, 4, 8))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, body, 0, 5))).toBe(FragmentResult.Accepted);
    const m = r.take();
    expect(m?.body.toString()).toBe(body.toString());
    expect(m?.messageSeq).toBe(2);
    expect(r.next).toBe(3);
    expect(r.add(...fragment(2, body, 0, 20))).toBe(FragmentResult.Old);
  });

  it('holds a whole message without copying, and never writes into it for a repeated fragment', () => {
    const r = new Reassembler(5, 1000, new ReassemblyBudget(1 << 20));
    const [h, buf] = fragment(5, Buffer.from('whole message'), 0, 13);
    expect(r.add(h, buf)).toBe(FragmentResult.Accepted);
    const [h2, junk] = fragment(5, Buffer.from('JUNKJUNKJUNKJ'), 2, 4);
    expect(r.add(h2, junk)).toBe(FragmentResult.Accepted);
    const m = r.take();
    expect(m?.body.toString()).toBe('whole message');
    expect(buf.toString()).toBe('whole message');
    expect(r.take()).toBeUndefined();
  });

  it('holds the next messages until the expected one is complete', () => {
    const r = new Reassembler(2, 1000, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(3, Buffer.from('fin'), 0, 3, 20))).toBe(FragmentResult.Accepted);
    expect(r.take()).toBeUndefined();
    expect(r.add(...fragment(2, Buffer.from('cke'), 0, 3))).toBe(FragmentResult.Accepted);
    expect(r.take()?.type).toBe(16);
    expect(r.take()?.type).toBe(20);
    expect(r.take()).toBeUndefined();
  });

  it('refuses messages over the cap, too far ahead, or inconsistent with earlier fragments', () => {
    const r = new Reassembler(0, 16, new ReassemblyBudget(1 << 20));
    expect(r.add(...fragment(0, Buffer.alloc(17), 0, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(9, Buffer.alloc(4), 0, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(0, Buffer.alloc(8), 0, 4))).toBe(FragmentResult.Accepted);
    expect(r.add(...fragment(0, Buffer.alloc(9), 4, 4))).toBe(FragmentResult.Refused);
    expect(r.add(...fragment(0, Buffer.alloc(8), 4, 4, 20))).toBe(FragmentResult.Refused);
  });

  it('holds only the bytes that arrived, charged to a shared budget that refuses what does not fit', () => {
    let full = 0;
    const budget = new ReassemblyBudget(120, () => full++);
    const a = new Reassembler(0, 4096, budget);
    const b = new Reassembler(0, 4096, budget);
    const body = Buffer.alloc(4000, 7);
    // A 4,000-byte claim with ten bytes near its end costs ten bytes, not 4,000.
    expect(a.add(...fragment(0, body, 3990, 10))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(10);
    // Overlapping and repeated bytes are charged once; runs that meet are joined.
    expect(a.add(...fragment(0, body, 3980, 15))).toBe(FragmentResult.Accepted);
    expect(a.add(...fragment(0, body, 3980, 15))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(20);
    // An out-of-order whole message is copied (not a view of its datagram) and charged.
    expect(b.add(...fragment(1, Buffer.alloc(50), 0, 50, 20))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(70);
    const cke = Buffer.alloc(60, 3);
    expect(b.add(...fragment(0, cke, 0, 55))).toBe(FragmentResult.Full);
    expect(full).toBe(1);
    expect(budget.used).toBe(70);
    expect(b.add(...fragment(0, cke, 0, 30))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(100);
    // Ending a handshake and taking a message give the bytes back.
    a.clear();
    expect(budget.used).toBe(80);
    expect(b.add(...fragment(0, cke, 30, 30))).toBe(FragmentResult.Accepted);
    expect(budget.used).toBe(110);
    expect(b.take()?.body).toEqual(cke);
    expect(budget.used).toBe(50);
    expect(b.take()?.type).toBe(20);
    expect(budget.used).toBe(0);
  });

  it('joins runs in any order into the whole message, and refuses a message scattered into too many', () => {
    const budget = new ReassemblyBudget(1 << 20);
    const body = Buffer.from(Array.from({ length: 200 }, (_, i) => i));
    const r = new Reassembler(0, 4096, budget);
    for (const at of [150, 10, 90, 50, 0, 120, 30, 170, 60])
      r.add(...fragment(0, body, at, Math.min(35, 200 - at)));
    expect(r.take()?.body).toEqual(body);
    expect(budget.used).toBe(0);
    const s = new Reassembler(0, 4096, budget);
    for (let i = 0; i < MAX_RUNS; i++)
      expect(s.add(...fragment(0, body, 10 * i, 1))).toBe(FragmentResult.Accepted);
    expect(s.add(...fragment(0, body, 195, 1))).toBe(FragmentResult.Refused);
    // Bytes that join an existing run are still welcome.
    expect(s.add(...fragment(0, body, 1, 5))).toBe(FragmentResult.Accepted);
  });
});
