/**
 * The compact binary form of a shared DTLS session, before sealing:
 *
 *     version (1) ‖ suite (2) ‖ sendLimit (2) ‖ credential tag (4) ‖ keys length (1) ‖ keys
 *     ‖ peer CID length (1) ‖ peer CID ‖ device id length (1) ‖ device id (UTF-8)
 *     ‖ PSK identity length (2) ‖ PSK identity
 *     [version 2: ‖ credential kind (1: 1 raw public key, 2 X.509) ‖ fingerprint length (1) ‖ fingerprint]
 *
 * PSK sessions are written as version 1, which replicas of earlier releases read too; sessions of devices
 * with certificates or raw public keys as version 2 (their fingerprint, 32 bytes; never the certificate).
 * About 115 bytes for a usual session (a certificate one about 150); sealed, 29 more.
 */
import type { SharedSession } from './session-store.js';

const PSK_VERSION = 1;
const VERSION = 2;
const KINDS = ['psk', 'rpk', 'x509'] as const;

export function encodeSession(s: SharedSession): Buffer {
  const device = Buffer.from(s.deviceId, 'utf8');
  const identity = Buffer.from(s.pskIdentity, 'utf8');
  if (device.length > 255) throw new RangeError('device id longer than 255 bytes');
  if (s.keys.length > 255 || s.peerCid.length > 255) throw new RangeError('session field too long');
  const psk = s.credentialKind === 'psk' && s.fingerprint === '';
  const fingerprint = Buffer.from(s.fingerprint, 'hex');
  const out = Buffer.allocUnsafe(
    1 +
      2 +
      2 +
      4 +
      1 +
      s.keys.length +
      1 +
      s.peerCid.length +
      1 +
      device.length +
      2 +
      identity.length +
      (psk ? 0 : 2 + fingerprint.length),
  );
  let p = out.writeUInt8(psk ? PSK_VERSION : VERSION, 0);
  p = out.writeUInt16BE(s.suite, p);
  p = out.writeUInt16BE(s.sendLimit, p);
  p = out.writeUInt32BE(s.credential >>> 0, p);
  p = out.writeUInt8(s.keys.length, p);
  p += s.keys.copy(out, p);
  p = out.writeUInt8(s.peerCid.length, p);
  p += out.write(s.peerCid, p, 'latin1');
  p = out.writeUInt8(device.length, p);
  p += device.copy(out, p);
  p = out.writeUInt16BE(identity.length, p);
  p += identity.copy(out, p);
  if (!psk) {
    p = out.writeUInt8(KINDS.indexOf(s.credentialKind), p);
    p = out.writeUInt8(fingerprint.length, p);
    fingerprint.copy(out, p);
  }
  return out;
}

/** The session with id `id`, or undefined when the bytes are not a session this version writes. */
export function decodeSession(id: string, b: Buffer): SharedSession | undefined {
  try {
    const version = b[0];
    if (version !== PSK_VERSION && version !== VERSION) return undefined;
    let p = 1;
    const suite = b.readUInt16BE(p);
    const sendLimit = b.readUInt16BE(p + 2);
    const credential = b.readUInt32BE(p + 4);
    p += 8;
    const kl = b.readUInt8(p++);
    const keys = Buffer.from(b.subarray(p, p + kl));
    p += kl;
    const cl = b.readUInt8(p++);
    const peerCid = b.toString('latin1', p, p + cl);
    p += cl;
    const dl = b.readUInt8(p++);
    const deviceId = b.toString('utf8', p, p + dl);
    p += dl;
    const il = b.readUInt16BE(p);
    p += 2;
    const pskIdentity = b.toString('utf8', p, p + il);
    p += il;
    let credentialKind: SharedSession['credentialKind'] = 'psk';
    let fingerprint = '';
    if (version === VERSION) {
      const kind = KINDS[b.readUInt8(p++)];
      const fl = b.readUInt8(p++);
      if (kind === undefined || p + fl > b.length) return undefined;
      credentialKind = kind;
      fingerprint = b.toString('hex', p, p + fl);
      p += fl;
    }
    if (p !== b.length || keys.length !== kl || peerCid.length !== cl) return undefined;
    return {
      id,
      deviceId,
      pskIdentity,
      credentialKind,
      fingerprint,
      suite,
      peerCid,
      sendLimit,
      keys,
      credential,
    };
  } catch {
    return undefined;
  }
}
