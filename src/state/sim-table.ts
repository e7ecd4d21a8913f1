/**
 * The IP → SIM table fed by the carrier's RADIUS accounting: which SIM (IMSI, IMEI, MSISDN) holds each address
 * of the private APN right now. Bounded in entries (the oldest session goes first, counted and logged) and in
 * time (a session not refreshed by a Start or Interim-Update within its TTL is forgotten, so a lost Stop does
 * not name a device forever). In memory, or in Redis (`RedisSimTable`) shared by replicas.
 */
import { BoundedMap } from '../collections/bounded-map.js';

export interface SimSession {
  imsi?: string;
  /** 15-digit IMEI (with its check digit), from 3GPP-IMEISV. */
  imei?: string;
  imeisv?: string;
  msisdn?: string;
  userName?: string;
  /** Acct-Session-Id: a Stop removes the address only if it ends this session. */
  sessionId?: string;
  /** ms since the epoch of the last Start or Interim-Update. */
  updatedAt: number;
}

export interface SimTable {
  put(ip: string, session: SimSession, ttlMs: number): Promise<void>;
  /** Removes the address if it still belongs to `sessionId` (any session when undefined); true when removed. */
  remove(ip: string, sessionId: string | undefined): Promise<boolean>;
  get(ip: string): SimSession | undefined | Promise<SimSession | undefined>;
  /** Addresses held (the memory table; Redis reports it from its index). */
  count(): Promise<number>;
  close(): Promise<void>;
}

/** Expired sessions are swept once a minute (a lookup never returns one). */
const SWEEP_MS = 60_000;

export class MemorySimTable implements SimTable {
  /** In update order (all live the same time): the first entry is the least recently refreshed. */
  private readonly byIp: BoundedMap<string, SimSession>;

  constructor(maxEntries: number, onCap: (evicted: number) => void) {
    this.byIp = new BoundedMap({
      maxEntries,
      resolutionMs: SWEEP_MS,
      onCap: (_cap, evicted) => onCap(evicted),
    });
  }

  get size(): number {
    return this.byIp.size;
  }

  put(ip: string, session: SimSession, ttlMs: number): Promise<void> {
    this.byIp.set(ip, session, 0, Date.now() + ttlMs);
    return Promise.resolve();
  }

  remove(ip: string, sessionId: string | undefined): Promise<boolean> {
    const held = this.byIp.get(ip);
    if (!held || (sessionId !== undefined && held.sessionId !== undefined && held.sessionId !== sessionId))
      return Promise.resolve(false);
    this.byIp.delete(ip);
    return Promise.resolve(true);
  }

  get(ip: string): SimSession | undefined {
    return this.byIp.get(ip);
  }

  count(): Promise<number> {
    return Promise.resolve(this.byIp.size);
  }

  close(): Promise<void> {
    this.byIp.clear();
    return Promise.resolve();
  }
}
