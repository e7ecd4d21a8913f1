import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_TRANSMISSION } from '../../src/coap/constants.js';
import { Reliability } from '../../src/coap/reliability.js';
import { FakePeer } from '../support/fake-peer.js';

describe('reliability of our CONs (RFC 7252 §4.2)', () => {
  let peer: FakePeer;
  let other: FakePeer;
  let events: string[];
  let delivered: string[];
  let reliability: Reliability;

  const con = (n: number) => Buffer.from([0x40, 0x44, 0, n]);
  const onDelivered = (name: string) => (d: boolean) => delivered.push(`${name} ${d}`);

  function make(maxPending = 10) {
    reliability = new Reliability(DEFAULT_TRANSMISSION, maxPending, {
      send: (p, bytes) => {
        events.push(`send ${p.key} ${bytes[3]}`);
        p.send(bytes);
      },
      retransmitted: () => events.push('retransmitted'),
      gaveUp: () => events.push('gave up'),
      capped: () => events.push('capped'),
    });
  }

  beforeEach(() => {
    vi.useFakeTimers();
    vi.spyOn(Math, 'random').mockReturnValue(0);
    peer = new FakePeer();
    other = new FakePeer('udp:10.0.0.2:5000', '10.0.0.2');
    events = [];
    delivered = [];
    make();
  });
  afterEach(() => {
    reliability.close();
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it('sends a CON once and stops when the peer acknowledges it', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    expect(peer.sent).toHaveLength(1);
    expect(reliability.size).toBe(1);
    reliability.settle(peer, 1, true);
    expect(delivered).toEqual(['a true']);
    expect(reliability.size).toBe(0);
    vi.advanceTimersByTime(200_000);
    expect(peer.sent).toHaveLength(1);
  });

  it('reports an RST as undelivered', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    reliability.settle(peer, 1, false);
    expect(delivered).toEqual(['a false']);
  });

  it('matches ACKs by peer and Message ID', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    reliability.settle(peer, 2, true);
    reliability.settle(other, 1, true);
    expect(delivered).toEqual([]);
    expect(reliability.size).toBe(1);
  });

  it('retransmits with exponential back-off and gives up after MAX_RETRANSMIT', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    // Math.random() = 0: the first timeout is ACK_TIMEOUT (2 s), then 4, 8 and 16 s.
    const sentAt: number[] = [];
    for (let t = 0; t < 100_000; t += 100) {
      const before = peer.sent.length;
      vi.advanceTimersByTime(100);
      if (peer.sent.length > before) sentAt.push(t + 100);
    }
    expect(sentAt).toEqual([2000, 6000, 14_000, 30_000]);
    expect(delivered).toEqual(['a false']);
    expect(events.filter((e) => e === 'retransmitted')).toHaveLength(4);
    expect(events.at(-1)).toBe('gave up');
    expect(reliability.size).toBe(0);
  });

  it('draws the first timeout between ACK_TIMEOUT and ACK_TIMEOUT × ACK_RANDOM_FACTOR', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.99);
    reliability.send(peer, 1, con(1));
    vi.advanceTimersByTime(2989);
    expect(peer.sent).toHaveLength(1);
    vi.advanceTimersByTime(2);
    expect(peer.sent).toHaveLength(2);
  });

  it('past its cap, sends once untracked and reports the cap', () => {
    make(1);
    reliability.send(peer, 1, con(1), onDelivered('a'));
    reliability.send(peer, 2, con(2), onDelivered('b'));
    expect(events).toEqual([`send ${peer.key} 1`, 'capped', `send ${peer.key} 2`]);
    expect(delivered).toEqual(['b false']);
    expect(reliability.size).toBe(1);
    vi.advanceTimersByTime(2000);
    expect(peer.sent.map((b) => b[3])).toEqual([1, 2, 1]);
  });

  it('replaces a CON with the same Message ID, reporting the earlier one undelivered', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    reliability.send(peer, 1, con(9), onDelivered('b'));
    expect(delivered).toEqual(['a false']);
    vi.advanceTimersByTime(2000);
    expect(peer.sent.map((b) => b[3])).toEqual([1, 9, 9]);
    reliability.settle(peer, 1, true);
    expect(delivered).toEqual(['a false', 'b true']);
  });

  it('forgets the CONs of a peer whose session ended, and every CON on close', () => {
    reliability.send(peer, 1, con(1), onDelivered('a'));
    reliability.send(other, 1, con(2), onDelivered('b'));
    reliability.send(peer, 2, con(3), onDelivered('c'));
    reliability.dropPeer(peer);
    expect(delivered).toEqual(['a false', 'c false']);
    expect(reliability.size).toBe(1);
    reliability.close();
    expect(delivered).toEqual(['a false', 'c false', 'b false']);
    expect(reliability.size).toBe(0);
    vi.advanceTimersByTime(200_000);
    expect(peer.sent).toHaveLength(2);
    expect(other.sent).toHaveLength(1);
  });
});
