/**
 * Where sessions are found: by Connection ID first, then by source address, and by device. Established
 * sessions are also kept in order of last activity, so the idle sweep and the session cap look only at the
 * oldest ones.
 *
 * The server sees only the `SessionTable` interface. The in-memory table below is the embedded default; a
 * store shared by replicas would implement the same calls over its own index (CIDs are the natural shared
 * key), with sessions carrying a leased range of write sequence numbers so two processes never reuse a nonce.
 */
import type { DtlsSession } from './session.js';

export interface SessionTable {
  /** Established sessions. */
  readonly size: number;
  byCid(cid: string): DtlsSession | undefined;
  /** Session bound to a source address: one in its handshake, or one without a Connection ID. */
  byAddress(key: string): DtlsSession | undefined;
  byDevice(deviceId: string): DtlsSession | undefined;
  bindAddress(key: string, s: DtlsSession): void;
  /** Unbinds `key` if it is bound to `s`. */
  unbindAddress(key: string, s: DtlsSession): void;
  bindCid(s: DtlsSession): void;
  /** Puts an established session in service (indexed by device, newest activity). */
  establish(s: DtlsSession): void;
  /** Records activity (the session's lastActive has changed). */
  touch(s: DtlsSession): void;
  /** Removes the session from every index. */
  remove(s: DtlsSession): void;
  /** Established sessions, least recently active first. */
  byActivity(): IterableIterator<DtlsSession>;
}

/** The key a session is bound under for its source address. */
export function addressKey(address: string, port: number): string {
  return address + '/' + port;
}

export class MemorySessionTable implements SessionTable {
  private readonly cids = new Map<string, DtlsSession>();
  private readonly addresses = new Map<string, DtlsSession>();
  /** Established sessions by device, in order of last activity (a touch re-inserts). */
  private readonly devices = new Map<string, DtlsSession>();

  get size(): number {
    return this.devices.size;
  }

  byCid(cid: string): DtlsSession | undefined {
    return this.cids.get(cid);
  }

  byAddress(key: string): DtlsSession | undefined {
    return this.addresses.get(key);
  }

  byDevice(deviceId: string): DtlsSession | undefined {
    return this.devices.get(deviceId);
  }

  bindAddress(key: string, s: DtlsSession): void {
    this.addresses.set(key, s);
  }

  unbindAddress(key: string, s: DtlsSession): void {
    if (this.addresses.get(key) === s) this.addresses.delete(key);
  }

  bindCid(s: DtlsSession): void {
    if (s.cid !== '') this.cids.set(s.cid, s);
  }

  establish(s: DtlsSession): void {
    if (s.deviceId !== undefined) this.devices.set(s.deviceId, s);
  }

  touch(s: DtlsSession): void {
    const id = s.deviceId;
    if (id === undefined || this.devices.get(id) !== s) return;
    this.devices.delete(id);
    this.devices.set(id, s);
  }

  remove(s: DtlsSession): void {
    if (s.cid !== '' && this.cids.get(s.cid) === s) this.cids.delete(s.cid);
    this.unbindAddress(addressKey(s.address, s.port), s);
    if (s.deviceId !== undefined && this.devices.get(s.deviceId) === s) this.devices.delete(s.deviceId);
  }

  byActivity(): IterableIterator<DtlsSession> {
    return this.devices.values();
  }
}
