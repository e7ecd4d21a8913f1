/**
 * Reliable transmission of the endpoint's own CON messages (RFC 7252 §4.2): the separate responses.
 *
 * A CON goes out and waits for the peer's ACK or RST with its Message ID; until then it is retransmitted
 * with exponential back-off, the first time after a random timeout between ACK_TIMEOUT and
 * ACK_TIMEOUT × ACK_RANDOM_FACTOR, each later time after twice the previous timeout, and given up after
 * MAX_RETRANSMIT retransmissions. Its `onDelivered` learns the outcome once: true on the ACK, false on an
 * RST, on giving up, or when the CON is dropped (its peer's session ended, the endpoint closed). The CONs
 * waiting are capped; past the cap a CON is sent once, untracked, and the cap reported.
 *
 * Each CON has its own timer: the random, doubling timeouts put the deadlines of CONs sent one after
 * another in no particular order, so they do not line up in a deadline queue.
 */
import type { Peer } from '../transport/peer.js';
import type { TransmissionParameters } from './constants.js';

/** A CON waiting for its ACK. */
class PendingCon {
  timer: NodeJS.Timeout | undefined = undefined;
  attempts = 0;
  constructor(
    readonly key: string,
    readonly peer: Peer,
    readonly bytes: Buffer,
    public timeoutMs: number,
    readonly onDelivered: ((delivered: boolean) => void) | undefined,
  ) {}
}

/** What the reliability layer reports to the endpoint's counters. */
export interface ReliabilityEvents {
  /** Sends a datagram (and counts it). */
  send(peer: Peer, bytes: Buffer): void;
  retransmitted(): void;
  /** A CON went unacknowledged through all its retransmissions. */
  gaveUp(): void;
  /** The cap on CONs waiting bit: one was sent untracked. */
  capped(): void;
}

function onTimer(reliability: Reliability, con: PendingCon): void {
  reliability.retransmit(con);
}

/** The endpoint's CONs waiting for their ACK, by peer and Message ID. */
export class Reliability {
  private readonly pending = new Map<string, PendingCon>();

  constructor(
    private readonly transmission: TransmissionParameters,
    /** Cap on CONs waiting for their ACK. */
    private readonly maxPending: number,
    private readonly events: ReliabilityEvents,
  ) {}

  /** CONs waiting for their ACK. */
  get size(): number {
    return this.pending.size;
  }

  /** Sends a CON and retransmits it until the peer acknowledges or rejects it, or it is given up. */
  send(peer: Peer, messageId: number, bytes: Buffer, onDelivered?: (delivered: boolean) => void): void {
    const t = this.transmission;
    const timeout = t.ackTimeoutMs * (1 + Math.random() * (t.ackRandomFactor - 1));
    const key = peer.key + '#' + messageId;
    const previous = this.pending.get(key);
    if (previous) {
      clearTimeout(previous.timer);
      previous.onDelivered?.(false);
    }
    if (this.pending.size >= this.maxPending) {
      // Too many unacknowledged CONs: send once without tracking.
      this.events.capped();
      this.events.send(peer, bytes);
      onDelivered?.(false);
      return;
    }
    const con = new PendingCon(key, peer, bytes, timeout, onDelivered);
    this.pending.set(key, con);
    con.timer = setTimeout(onTimer, timeout, this, con);
    this.events.send(peer, bytes);
  }

  /** Matches the peer's ACK (`acknowledged`) or RST to the CON with its Message ID, if one waits. */
  settle(peer: Peer, messageId: number, acknowledged: boolean): void {
    const key = peer.key + '#' + messageId;
    const con = this.pending.get(key);
    if (!con) return;
    clearTimeout(con.timer);
    this.pending.delete(key);
    con.onDelivered?.(acknowledged);
  }

  /** Retransmits a CON, or gives up after MAX_RETRANSMIT retransmissions (its timer's callback). */
  retransmit(con: PendingCon): void {
    if (this.pending.get(con.key) !== con) return;
    if (con.attempts >= this.transmission.maxRetransmit) {
      this.pending.delete(con.key);
      this.events.gaveUp();
      con.onDelivered?.(false);
      return;
    }
    con.attempts++;
    con.timeoutMs *= 2;
    this.events.retransmitted();
    this.events.send(con.peer, con.bytes);
    con.timer = setTimeout(onTimer, con.timeoutMs, this, con);
  }

  /** Forgets a peer's CONs (its session ended): reported undelivered. */
  dropPeer(peer: Peer): void {
    const prefix = peer.key + '#';
    for (const [k, con] of this.pending) {
      if (!k.startsWith(prefix)) continue;
      clearTimeout(con.timer);
      this.pending.delete(k);
      con.onDelivered?.(false);
    }
  }

  /** Forgets every CON: reported undelivered. */
  close(): void {
    for (const con of this.pending.values()) {
      clearTimeout(con.timer);
      con.onDelivered?.(false);
    }
    this.pending.clear();
  }
}
