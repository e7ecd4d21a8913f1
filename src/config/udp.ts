/**
 * The `udp` section (raw UDP devices: datagrams that are not CoAP, plain or over DTLS) and the `radius` section
 * (the carrier's RADIUS accounting, naming SIMs behind dynamic addresses). See docs/udp.md.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { codecSpecSchema } from './codecs.js';
import { portSchema } from './port.js';

const offset = z.number().int().min(0).max(1024);

/** Identity sources of raw UDP, in the order `udp.identity` tries them. */
export const IDENTITY_SOURCES = ['dtls', 'ip', 'radius', 'frame'] as const;
export type IdentitySource = (typeof IDENTITY_SOURCES)[number];

/** Device file fields a frame's id (or a RADIUS session) can name a device by. */
export const SUBSCRIBER_FIELDS = ['imei', 'imsi', 'iccid', 'msisdn'] as const;

/** A byte pattern written `hex:…`, `base64:…` or `text:…`; '' for none. */
export const bytePattern = z
  .string()
  .refine(
    (s) =>
      s === '' ||
      /^hex:([0-9a-fA-F]{2})+$/.test(s) ||
      /^base64:[A-Za-z0-9+/]+={0,2}$/.test(s) ||
      /^text:.+$/.test(s),
    'a byte pattern is hex:<hex digits>, base64:<base64> or text:<characters> ("" for none)',
  );

/** The bytes of a byte pattern (empty for ''). */
export function patternBytes(s: string): Buffer {
  if (s === '') return Buffer.alloc(0);
  const i = s.indexOf(':');
  const kind = s.slice(0, i);
  const body = s.slice(i + 1);
  return Buffer.from(body, kind === 'hex' ? 'hex' : kind === 'base64' ? 'base64' : 'utf8');
}

const REPLY_TOKENS = /^(?:[0-9a-fA-F]{2})+$|^(counter|counter8|counter16|counter32|tag|length|downlink)$/;

/** A reply frame template: space-separated hex bytes and fields (see docs/udp.md). */
const replyTemplate = z.string().refine(
  (s) =>
    s.trim() === '' ||
    s
      .trim()
      .split(/\s+/)
      .every((t) => REPLY_TOKENS.test(t)),
  'a reply template is space-separated hex bytes and the fields counter, counter8, counter16, counter32, tag, length, downlink',
);

export const udpSchema = z
  .strictObject({
    bind: z.string().default('0.0.0.0').describe('Address the raw UDP listeners bind to.'),
    port: portSchema.default(0).describe('Raw NoSec UDP listener (e.g. 5685); 0 = off.'),
    dtlsPort: portSchema
      .default(0)
      .describe(
        'Raw UDP over DTLS (e.g. 5686), with the same DTLS settings and device credentials as `coap.dtlsPort`; 0 = off.',
      ),
    identity: z
      .array(z.enum(IDENTITY_SOURCES))
      .min(1)
      .refine((a) => new Set(a).size === a.length, 'each identity source once')
      .default([...IDENTITY_SOURCES])
      .describe(
        'Identity sources tried in order, first match wins: the DTLS credential, the source IP (device file `ip`), the carrier’s RADIUS accounting (`radius`), a device id in the frame (`udp.frame`).',
      ),
    path: z
      .string()
      .regex(/^[^/].*$|^$/, 'no leading slash')
      .default('udp')
      .describe(
        'Path raw uplinks are decoded and published under (picks a device’s `paths` codec, fills `{path}` in the topic).',
      ),
    maxDatagramBytes: z
      .number()
      .int()
      .min(16)
      .max(65507)
      .default(1280)
      .describe('Largest datagram accepted; larger ones are dropped and counted (`too_large`).'),
    frame: z
      .strictObject({
        id: z
          .strictObject({
            offset: offset.default(0).describe('First byte of the device id in the datagram.'),
            length: z.number().int().min(1).max(64).describe('Bytes of the device id.'),
            encoding: z
              .enum(['bcd', 'bcd-swapped', 'ascii', 'hex'])
              .default('bcd')
              .describe(
                'bcd: two digits per byte, high nibble first, F filler; bcd-swapped: low nibble first (as SIMs store the ICCID); ascii: digits as text; hex: the bytes in hex.',
              ),
            field: z
              .enum(['imei', 'imsi', 'iccid', 'msisdn', 'id'])
              .default('imei')
              .describe('Device file field the id is matched against (`id`: the device id itself).'),
          })
          .optional()
          .describe('A device id carried at a fixed place in every datagram.'),
        codec: codecSpecSchema
          .optional()
          .describe(
            'Or a codec run on the datagram before the device is known; its decoded object’s `deviceId` (string) names the device.',
          ),
        counter: z
          .strictObject({
            offset: offset.describe('First byte of the frame counter (big-endian).'),
            bytes: z
              .union([z.literal(2), z.literal(4)])
              .default(2)
              .describe('2 (16-bit counter) or 4 (32-bit counter).'),
          })
          .optional()
          .describe(
            'A frame counter at a fixed place; without it the device codec may return one (`udp.counter.field`).',
          ),
        payloadOffset: offset
          .optional()
          .describe(
            'Bytes before the payload handed to the device codec; default: the end of the id and counter fields.',
          ),
      })
      .prefault({}),
    counter: z
      .strictObject({
        field: z
          .string()
          .min(1)
          .default('counter')
          .describe(
            'Top-level field of the device codec’s decoded object holding the frame counter (when `frame.counter` is not set).',
          ),
        bits: z
          .union([z.literal(16), z.literal(32)])
          .default(32)
          .describe(
            'Width of a counter returned by the codec (a frame counter’s width is `frame.counter.bytes`).',
          ),
        maxGap: z
          .number()
          .int()
          .min(1)
          .max(2 ** 30)
          .default(16384)
          .describe(
            'Largest step forward accepted (frames lost in between); a counter further ahead, behind, or equal is dropped.',
          ),
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(1_000_000)
          .describe(
            'Cap on devices whose counter the memory store keeps; past it, uplinks of new devices are dropped (a forgotten counter would re-open replays).',
          ),
      })
      .prefault({}),
    dedup: z
      .strictObject({
        windowMs: z
          .number()
          .int()
          .min(0)
          .max(3_600_000)
          .default(60_000)
          .describe('Without a counter: the same bytes from the same device within this window are dropped.'),
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(250_000)
          .describe('Cap on remembered datagram hashes (memory store).'),
      })
      .prefault({}),
    reply: z
      .strictObject({
        ack: replyTemplate
          .default('')
          .describe(
            'Acknowledgement frame sent once an uplink is safe (published, or in the outbox), e.g. `06 counter16`; empty: no acknowledgement.',
          ),
        downlink: replyTemplate
          .default('downlink')
          .describe(
            'Reply frame that carries a pending downlink (encoded by the device codec’s encodeDownlink), e.g. `a1 tag downlink`.',
          ),
        downlinks: z
          .boolean()
          .default(true)
          .describe('Piggyback pending downlinks (desired state, commands) on replies to raw uplinks.'),
        confirm: z
          .enum(['next-uplink', 'frame'])
          .default('next-uplink')
          .describe(
            'How a device confirms a downlink: any newer uplink (next-uplink), or only an explicit confirmation frame (frame).',
          ),
        confirmPrefix: bytePattern
          .default('')
          .describe(
            'A payload of these bytes followed by the 8-byte downlink tag confirms that downlink (and is not published).',
          ),
        maxBytes: z
          .number()
          .int()
          .min(1)
          .max(65507)
          .default(512)
          .describe(
            'Largest reply datagram; a downlink that would not fit is not sent (the acknowledgement alone is) and stays pending.',
          ),
        maxCached: z
          .number()
          .int()
          .min(0)
          .default(100_000)
          .describe('Cap on last replies kept to answer a retransmitted uplink again.'),
      })
      .prefault({}),
    unknownDevice: z
      .strictObject({
        reply: bytePattern
          .default('')
          .describe(
            'Bytes sent back to a datagram whose device is not known (e.g. `hex:15`); empty: silence.',
          ),
      })
      .prefault({}),
  })
  .describe('Raw UDP devices: one datagram is one uplink (see docs/udp.md).')
  .prefault({});

export type UdpConfig = z.infer<typeof udpSchema>;

/** An IPv4/IPv6 address or a CIDR block. */
const addressOrCidr = z.string().refine((s) => {
  const [addr, bits, ...rest] = s.split('/');
  const v = isIP(addr);
  if (v === 0 || rest.length) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (v === 4 ? 32 : 128);
}, 'an IP address or CIDR block (10.0.0.0/8)');

const radiusClient = z
  .strictObject({
    address: addressOrCidr.describe('Address or CIDR block the accounting requests come from.'),
    secret: z
      .string()
      .regex(/^(hex|base64|text):.+/, 'a secret is hex:…, base64:… or text:…')
      .optional()
      .describe('Shared secret: hex:…, base64:… or text:…; prefer `secretFile`.'),
    secretFile: z
      .string()
      .min(1)
      .optional()
      .describe('File holding the shared secret in the same notation (e.g. a mounted Secret).'),
  })
  .refine(
    (c) => (c.secret === undefined) !== (c.secretFile === undefined),
    'give exactly one of secret and secretFile',
  );

export const radiusSchema = z
  .strictObject({
    bind: z.string().default('0.0.0.0').describe('Address the RADIUS accounting listener binds to.'),
    port: portSchema.default(0).describe('RADIUS accounting listener (1813 is the standard port); 0 = off.'),
    clients: z
      .array(radiusClient)
      .default([])
      .describe('Who may send accounting (the carrier’s PGW/GGSN): address or CIDR and shared secret.'),
    sessions: z
      .strictObject({
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(1_000_000)
          .describe('Cap on addresses in the IP → SIM table; past it, the oldest sessions are dropped.'),
        ttlSeconds: z
          .number()
          .int()
          .min(60)
          .default(48 * 3600)
          .describe(
            'A session with no Start or Interim-Update for this long is forgotten (a lost Stop must not name a device forever).',
          ),
      })
      .prefault({}),
  })
  .describe(
    'RADIUS accounting (RFC 2866) from the carrier: maps each session’s Framed-IP-Address to the SIM (IMSI, IMEI, MSISDN).',
  )
  .prefault({});

export type RadiusConfig = z.infer<typeof radiusSchema>;
