/**
 * The IP → SIM table fed by the carrier's RADIUS accounting: which SIM (IMSI, IMEI, MSISDN) holds each address
 * of the private APN right now. Bounded in entries (the oldest session goes first, counted and logged) and in
 * time (a session not refreshed by a Start or Interim-Update within its TTL is forgotten, so a lost Stop does
 * not name a device forever). In memory, or in Redis (`RedisSimTable`) shared by replicas.
 */
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

interface Held {
  session: SimSession;
  expiresAt: number;
}

export class MemorySimTable implements SimTable {
  /** Insertion order is update order: the first entry is the least recently refreshed. */
  private readonly byIp = new Map<string, Held>();

  constructor(
    private readonly maxEntries: number,
    private readonly onCap: (evicted: number) => void,
  ) {}

  get size(): number {
    return this.byIp.size;
  }

  put(ip: string, session: SimSession, ttlMs: number): Promise<void> {
    this.byIp.delete(ip);
    let evicted = 0;
    while (this.byIp.size >= this.maxEntries) {
      const oldest = this.byIp.keys().next().value as string;
      this.byIp.delete(oldest);
      evicted++;
    }
    if (evicted) this.onCap(evicted);
    this.byIp.set(ip, { session, expiresAt: Date.now() + ttlMs });
    return Promise.resolve();
  }

  remove(ip: string, sessionId: string | undefined): Promise<boolean> {
    const held = this.byIp.get(ip);
    if (
      !held ||
      (sessionId !== undefined &&
        held.session.sessionId !== undefined &&
        held.session.sessionId !== sessionId)
    )
      return Promise.resolve(false);
    this.byIp.delete(ip);
    return Promise.resolve(true);
  }

  get(ip: string): SimSession | undefined {
    const held = this.byIp.get(ip);
    if (held === undefined) return undefined;
    if (held.expiresAt <= Date.now()) {
      this.byIp.delete(ip);
      return undefined;
    }
    return held.session;
  }

  /** Drops expired sessions (called on a timer by the RADIUS listener). */
  sweep(now = Date.now()): void {
    for (const [ip, held] of this.byIp) if (held.expiresAt <= now) this.byIp.delete(ip);
  }

  count(): Promise<number> {
    return Promise.resolve(this.byIp.size);
  }

  close(): Promise<void> {
    this.byIp.clear();
    return Promise.resolve();
  }
}
