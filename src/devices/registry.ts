/**
 * Device registries: where the gateway learns which devices exist, their things, codecs and keys. The
 * hot path asks synchronously (`get`, `byAddress`); credential lookups during a DTLS handshake (PSK identity,
 * certificate, raw public key) are asynchronous so a registry may be remote.
 */
import type { CredentialLookup } from '../dtls/credential-lookup.js';
import type { Device } from './device.js';

export type { CredentialLookup };

export interface RegistryChange {
  /** Devices that were removed or whose credentials changed: their sessions must end. */
  readonly removed: readonly string[];
  /** Devices that are new (not in the set before). */
  readonly added?: readonly string[];
  readonly size: number;
}

export interface DeviceRegistry {
  get(id: string): Device | undefined;
  byAddress(ip: string): Device | undefined;
  /** The device whose IMSI, IMEI, ICCID or MSISDN this is (a registry that has no such index may leave it out). */
  bySubscriber?(field: 'imsi' | 'imei' | 'iccid' | 'msisdn', digits: string): Device | undefined;
  byPskIdentity(identity: string): Promise<Device | undefined>;
  byCredential(kind: CredentialLookup, value: string): Promise<Device | undefined>;
  readonly size: number;
  /** Every device, when the registry holds them all (a remote registry may not). */
  values?(): Iterable<Device>;
  /** Subscribes to changes; returns the unsubscribe function. */
  onChange(listener: (change: RegistryChange) => void): () => void;
  /** Re-reads the source now (SIGHUP). Keeps the current devices when the source is invalid. */
  reload(): Promise<void>;
  close(): void;
}
