/** A registry held in memory, built from a list of devices. File-backed and other registries fill it. */
import type { Device } from './device.js';
import type { CredentialLookup, DeviceRegistry, RegistryChange } from './registry.js';

export interface DeviceIndex {
  readonly byId: ReadonlyMap<string, Device>;
  readonly byIp: ReadonlyMap<string, Device>;
  readonly byIdentity: ReadonlyMap<string, Device>;
  /** `<field>:<digits>` (imsi, imei, iccid, msisdn) → device; IMEIs by their first 14 digits. */
  readonly bySubscriber: ReadonlyMap<string, Device>;
  /** Certificate and raw public key indexes (CredentialLookup → value → device). */
  readonly byCredential: ReadonlyMap<CredentialLookup, ReadonlyMap<string, Device>>;
}

/** Adds `d` under `value`, refusing a value already claimed by another device. */
function claim(index: Map<string, Device>, value: string, d: Device, what: string): void {
  const other = index.get(value);
  if (other && other !== d) throw new Error(`${what} "${value}" is used by "${other.id}" and "${d.id}"`);
  index.set(value, d);
}

/** Fields a SIM or modem identity can name a device by. */
export type SubscriberField = 'imsi' | 'imei' | 'iccid' | 'msisdn';

/**
 * The key of a subscriber identity. An IMEI is compared on its first 14 digits (TAC and serial number), so a
 * 15-digit IMEI (with its check digit) and a 16-digit IMEISV (with a software version) name the same modem.
 */
export function subscriberKey(field: SubscriberField, digits: string): string {
  return `${field}:${field === 'imei' ? digits.slice(0, 14) : digits}`;
}

const SUBSCRIBER_FIELDS: readonly SubscriberField[] = ['imsi', 'imei', 'iccid', 'msisdn'];

/**
 * Indexes devices, rejecting duplicate ids, PSK identities, certificate fingerprints and subjects, raw public
 * keys, IPs and subscriber identities with a message naming them.
 */
export function indexDevices(devices: readonly Device[]): DeviceIndex {
  const byId = new Map<string, Device>();
  const byIp = new Map<string, Device>();
  const byIdentity = new Map<string, Device>();
  const bySubscriber = new Map<string, Device>();
  const x509Fingerprint = new Map<string, Device>();
  const x509Subject = new Map<string, Device>();
  const rpkFingerprint = new Map<string, Device>();
  const names = new Map<string, Device>();
  for (const d of devices) {
    if (d.x509?.fingerprint) claim(x509Fingerprint, d.x509.fingerprint, d, 'certificate fingerprint');
    if (d.x509?.subject) claim(x509Subject, d.x509.subject, d, 'certificate subject');
    if (d.rpk) claim(rpkFingerprint, d.rpk.fingerprint, d, 'raw public key');
  }
  // A name is a device id, else the thing of the first device that has it.
  for (const d of devices) if (!names.has(d.thing)) names.set(d.thing, d);
  for (const d of devices) names.set(d.id, d);
  for (const d of devices) {
    if (byId.has(d.id)) throw new Error(`device id "${d.id}" is listed twice`);
    byId.set(d.id, d);
    if (d.psk) {
      const other = byIdentity.get(d.psk.identity);
      if (other) throw new Error(`PSK identity "${d.psk.identity}" is used by "${other.id}" and "${d.id}"`);
      byIdentity.set(d.psk.identity, d);
    }
    for (const ip of d.ips) {
      const other = byIp.get(ip);
      if (other) throw new Error(`IP ${ip} is claimed by "${other.id}" and "${d.id}"`);
      byIp.set(ip, d);
    }
    for (const field of SUBSCRIBER_FIELDS) {
      const v = d[field];
      if (v === undefined) continue;
      const key = subscriberKey(field, v);
      const other = bySubscriber.get(key);
      if (other) throw new Error(`${field.toUpperCase()} ${v} is claimed by "${other.id}" and "${d.id}"`);
      bySubscriber.set(key, d);
    }
  }
  const byCredential = new Map<CredentialLookup, ReadonlyMap<string, Device>>([
    ['x509-fingerprint', x509Fingerprint],
    ['x509-subject', x509Subject],
    ['rpk-fingerprint', rpkFingerprint],
    ['name', names],
  ]);
  return { byId, byIp, byIdentity, bySubscriber, byCredential };
}

function sameCredentials(a: Device, b: Device): boolean {
  if (
    a.thing !== b.thing ||
    a.x509?.fingerprint !== b.x509?.fingerprint ||
    a.x509?.subject !== b.x509?.subject ||
    a.rpk?.fingerprint !== b.rpk?.fingerprint
  )
    return false;
  if (!a.psk || !b.psk) return !a.psk && !b.psk;
  return a.psk.identity === b.psk.identity && a.psk.key.equals(b.psk.key);
}

export class MemoryRegistry implements DeviceRegistry {
  private index: DeviceIndex = indexDevices([]);
  private readonly listeners = new Set<(change: RegistryChange) => void>();

  constructor(devices: readonly Device[] = []) {
    this.index = indexDevices(devices);
  }

  get size(): number {
    return this.index.byId.size;
  }

  get(id: string): Device | undefined {
    return this.index.byId.get(id);
  }

  byAddress(ip: string): Device | undefined {
    return this.index.byIp.get(ip);
  }

  bySubscriber(field: SubscriberField, digits: string): Device | undefined {
    return this.index.bySubscriber.get(subscriberKey(field, digits));
  }

  byPskIdentity(identity: string): Promise<Device | undefined> {
    return Promise.resolve(this.index.byIdentity.get(identity));
  }

  byCredential(kind: CredentialLookup, value: string): Promise<Device | undefined> {
    return Promise.resolve(this.index.byCredential.get(kind)?.get(value));
  }

  /** Every device (for the codec registry, which creates the codecs devices use ahead of time). */
  values(): IterableIterator<Device> {
    return this.index.byId.values();
  }

  /** Lookup without a promise, for callers that know the registry is local. */
  byPskIdentitySync(identity: string): Device | undefined {
    return this.index.byIdentity.get(identity);
  }

  /** Replaces the device set; listeners hear which devices went away or changed credentials. */
  replace(devices: readonly Device[]): RegistryChange {
    const next = indexDevices(devices);
    const removed: string[] = [];
    for (const [id, old] of this.index.byId) {
      const now = next.byId.get(id);
      if (!now || !sameCredentials(old, now)) removed.push(id);
    }
    const added: string[] = [];
    for (const id of next.byId.keys()) if (!this.index.byId.has(id)) added.push(id);
    this.index = next;
    const change = { removed, added, size: next.byId.size };
    for (const l of this.listeners) l(change);
    return change;
  }

  onChange(listener: (change: RegistryChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  reload(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.listeners.clear();
  }
}
