/** A device as the registry knows it, and the schema of `devices.yaml`. */
import { createHash, createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { codecSpecSchema, type CodecSpec } from '../config/codecs.js';

/**
 * Decodes a key written `hex:<hex digits>`, `base64:<base64>` or `text:<characters>` (the device file's
 * notation, also used by key files and the simulator's --psk-key). Throws an Error saying what is wrong; the
 * message never contains the key.
 */
export function decodeKey(s: string): Buffer {
  const m = /^(hex|base64|text):/.exec(s);
  if (!m) throw new Error('a key is written hex:<hex digits>, base64:<base64> or text:<characters>');
  const kind = m[1];
  const body = s.slice(kind.length + 1);
  let key: Buffer;
  if (kind === 'hex') {
    if (!/^[0-9a-fA-F]*$/.test(body))
      throw new Error('hex key is not hex: after "hex:" only the digits 0-9 and a-f may follow');
    if (body.length % 2 !== 0) throw new Error('hex key must be an even number of hex digits');
    key = Buffer.from(body, 'hex');
  } else if (kind === 'base64') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(body)) throw new Error('base64 key is not valid base64');
    key = Buffer.from(body, 'base64');
  } else {
    key = Buffer.from(body, 'utf8');
  }
  if (key.length === 0 || key.length > 64) throw new Error('a PSK must be 1 to 64 bytes');
  return key;
}

const keySchema = z.string().transform((s, ctx) => {
  try {
    return decodeKey(s);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
});

/**
 * A string of digits. YAML reads an unquoted number as a number: one that is a safe integer is taken as its
 * digits; a longer one (an ICCID) lost digits on the way and must be quoted.
 */
const digits = (min: number, max: number) =>
  z
    .union([z.string(), z.number()])
    .refine((v) => typeof v === 'string' || Number.isSafeInteger(v), 'too long for a number: quote it')
    .transform((v) => String(v))
    .pipe(z.string().regex(new RegExp(`^[0-9]{${min},${max}}$`), `a string of ${min} to ${max} digits`));

/** A SHA-256 fingerprint: 64 hex digits, optionally in colon-separated pairs (as `openssl x509 -fingerprint` prints). */
const fingerprintSchema = z
  .string()
  .regex(/^([0-9a-fA-F]{2}:?){31}[0-9a-fA-F]{2}$/, 'a SHA-256 fingerprint is 64 hex digits (colons allowed)')
  .transform((s) => s.replaceAll(':', '').toLowerCase());

/**
 * Reads a public key given as base64 DER SubjectPublicKeyInfo or as PEM, and returns the SHA-256 fingerprint
 * of its DER SubjectPublicKeyInfo. Throws when it is not a P-256 (secp256r1) key.
 */
function publicKeyFingerprint(text: string): string {
  const t = text.trim();
  const key = t.startsWith('-----')
    ? createPublicKey(t)
    : createPublicKey({ key: Buffer.from(t, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error('the public key must be a P-256 (secp256r1) EC key');
  return createHash('sha256')
    .update(key.export({ format: 'der', type: 'spki' }))
    .digest('hex');
}

const publicKeySchema = z.string().transform((s, ctx) => {
  try {
    return publicKeyFingerprint(s);
  } catch (err) {
    const message = (err as Error).message;
    ctx.addIssue({
      code: 'custom',
      message: message.startsWith('the public key')
        ? message
        : 'publicKey must be a base64 DER SubjectPublicKeyInfo or a PEM PUBLIC KEY',
    });
    return z.NEVER;
  }
});

export const deviceEntrySchema = z.strictObject({
  id: z.string().min(1).max(128),
  thing: z
    .string()
    .regex(/^[a-zA-Z0-9:_-]{1,128}$/, 'an AWS IoT thing name is 1-128 of a-z A-Z 0-9 : _ -')
    .optional(),
  codec: codecSpecSchema.optional(),
  /** Codec per uplink path (without leading slash), overriding `codec`. */
  paths: z.record(z.string(), codecSpecSchema).optional(),
  psk: z
    .strictObject({
      identity: z.string().min(1).max(128),
      /** The key inline: hex:…, base64:… or text:…. */
      key: keySchema.optional(),
      /**
       * Or a file holding the key in the same notation (e.g. a Kubernetes Secret mounted as files), relative
       * to the device file's folder. The registry reloads when it changes.
       */
      keyFile: z.string().min(1).optional(),
    })
    .refine((p) => (p.key === undefined) !== (p.keyFile === undefined), 'give exactly one of key and keyFile')
    .optional(),
  /** An X.509 client certificate: pinned by its fingerprint, or named by its subject CN (see dtls.clientIdentity). */
  x509: z
    .strictObject({
      /** SHA-256 of the DER certificate. */
      fingerprint: fingerprintSchema.optional(),
      /** Subject common name. */
      subject: z.string().min(1).max(256).optional(),
    })
    .refine((x) => x.fingerprint !== undefined || x.subject !== undefined, 'give fingerprint or subject')
    .optional(),
  /** A raw public key (RFC 7250): the key itself, or the SHA-256 of its DER SubjectPublicKeyInfo. */
  rpk: z
    .strictObject({ publicKey: publicKeySchema.optional(), fingerprint: fingerprintSchema.optional() })
    .refine(
      (r) => (r.publicKey === undefined) !== (r.fingerprint === undefined),
      'give exactly one of publicKey and fingerprint',
    )
    .optional(),
  /** Source IP(s) that identify this device on NoSec (private APN with static addressing). */
  ip: z
    .union([z.string(), z.array(z.string())])
    .optional()
    .refine(
      (v) => v === undefined || (Array.isArray(v) ? v : [v]).every((a) => isIP(a) !== 0),
      'not an IP address',
    ),
  /** SIM and modem identities the carrier's RADIUS accounting or a raw UDP frame name the device by. */
  imsi: digits(6, 15).optional(),
  imei: digits(14, 16).optional(),
  msisdn: digits(5, 15).optional(),
  iccid: digits(18, 22).optional(),
});

export const deviceFileSchema = z.array(deviceEntrySchema);

export interface Device {
  readonly id: string;
  readonly thing: string;
  readonly codec?: CodecSpec;
  readonly paths?: Readonly<Record<string, CodecSpec>>;
  readonly psk?: { readonly identity: string; readonly key: Buffer };
  /** X.509 client certificate pins (lower-case hex fingerprint, subject CN). */
  readonly x509?: { readonly fingerprint?: string; readonly subject?: string };
  /** Raw public key, as the lower-case hex SHA-256 of its DER SubjectPublicKeyInfo. */
  readonly rpk?: { readonly fingerprint: string };
  readonly ips: readonly string[];
  readonly imsi?: string;
  /** IMEI as written in the device file (14 digits, 15 with the check digit, or the 16-digit IMEISV). */
  readonly imei?: string;
  readonly msisdn?: string;
  readonly iccid?: string;
}

export type DeviceEntry = z.infer<typeof deviceEntrySchema>;

/** A device from its entry; `key` is the PSK read from the entry's `keyFile`, when it has one. */
export function toDevice(entry: DeviceEntry, key?: Buffer): Device {
  const psk = entry.psk;
  const pskKey = psk?.key ?? key;
  return {
    id: entry.id,
    thing: entry.thing ?? entry.id,
    codec: entry.codec,
    paths: entry.paths,
    psk: psk && pskKey ? { identity: psk.identity, key: pskKey } : undefined,
    x509: entry.x509 && { fingerprint: entry.x509.fingerprint, subject: entry.x509.subject },
    rpk: entry.rpk && { fingerprint: (entry.rpk.publicKey ?? entry.rpk.fingerprint) as string },
    ips: entry.ip === undefined ? [] : Array.isArray(entry.ip) ? entry.ip : [entry.ip],
    imsi: entry.imsi,
    imei: entry.imei,
    msisdn: entry.msisdn,
    iccid: entry.iccid,
  };
}
