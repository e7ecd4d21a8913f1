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
  byAddress(key: AddressKey): DtlsSession | undefined;
  byDevice(deviceId: string): DtlsSession | undefined;
  bindAddress(key: AddressKey, s: DtlsSession): void;
  /** Unbinds `key` if it is bound to `s`. */
  unbindAddress(key: AddressKey, s: DtlsSession): void;
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

/** The key a session is bound under for its source address: a number for IPv4, else a string. */
export type AddressKey = string | number;

/** A dotted-quad IPv4 address as a number below 2^32, or -1 for anything else. */
function ipv4Number(address: string): number {
  let ip = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < address.length; i++) {
    const c = address.charCodeAt(i) - 48;
    if (c >= 0 && c <= 9) {
      octet = octet * 10 + c;
      if (++digits > 3) return -1;
    } else if (c === -2 && digits > 0 && octet <= 255 && dots < 3) {
      ip = ip * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return -1;
    }
  }
  return dots === 3 && digits > 0 && octet <= 255 ? ip * 256 + octet : -1;
}

/**
 * `a.b.c.d` and the port as one number (address × 65536 + port, exact below 2^53), so the per-datagram
 * lookup builds no string; other addresses as `address/port`.
 */
export function addressKey(address: string, port: number): AddressKey {
  const ip = ipv4Number(address);
  return ip < 0 ? address + '/' + port : ip * 65536 + port;
}

export class MemorySessionTable implements SessionTable {
  private readonly cids = new Map<string, DtlsSession>();
  private readonly addresses = new Map<AddressKey, DtlsSession>();
  /** Established sessions by device, in order of last activity (a touch re-inserts). */
  private readonly devices = new Map<string, DtlsSession>();

  get size(): number {
    return this.devices.size;
  }

  byCid(cid: string): DtlsSession | undefined {
    return this.cids.get(cid);
  }

  byAddress(key: AddressKey): DtlsSession | undefined {
    return this.addresses.get(key);
  }

  byDevice(deviceId: string): DtlsSession | undefined {
    return this.devices.get(deviceId);
  }

  bindAddress(key: AddressKey, s: DtlsSession): void {
    this.addresses.set(key, s);
  }

  unbindAddress(key: AddressKey, s: DtlsSession): void {
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
