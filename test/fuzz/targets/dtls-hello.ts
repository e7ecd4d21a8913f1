/**
 * The ClientHello body and its extension block (RFC 6347 §4.2.1, RFC 5246 §7.4.1.2, the extensions of
 * `src/dtls/protocol/extensions.ts`), as the server parses them before anything else of a handshake: any
 * body parses or yields undefined without throwing; what parses re-encodes to the body's leading fields;
 * ClientHellos built from random fields and extensions parse back to exactly those fields.
 */
import fc from 'fast-check';
import { ExtensionType, RANDOM_BYTES } from '../../../src/dtls/protocol/constants.js';
import { EMPTY } from '../../../src/dtls/protocol/cursor.js';
import { parseClientExtensions, type ClientExtensions } from '../../../src/dtls/protocol/extensions.js';
import { parseClientHello, type ClientHello } from '../../../src/dtls/protocol/handshake.js';
import { bytesOf, fail, hexFile, must, mutatedSeed, randomBytes, vec, type FuzzTarget } from '../target.js';

export interface HelloInput {
  body: Buffer;
  /** The fields the body was built from: it must parse back to them. */
  built?: ClientHello;
}

type Extension = [type: number, data: Buffer];

function u16s(list: readonly number[]): Buffer {
  const b = Buffer.alloc(2 * list.length);
  list.forEach((v, i) => b.writeUInt16BE(v, 2 * i));
  return b;
}

/** The extension block of a list of extensions (without its two-byte length). */
function extensionBlock(list: readonly Extension[]): Buffer {
  return Buffer.concat(list.map(([type, data]) => Buffer.concat([u16s([type]), vec(2, data)])));
}

/** The ClientHello fields up to the extensions, as the wire has them. */
function helloFields(h: ClientHello): Buffer {
  return Buffer.concat([
    u16s([h.clientVersion]),
    h.random,
    vec(1, h.sessionId),
    vec(1, h.cookie),
    vec(2, u16s(h.cipherSuites)),
    vec(1, h.compressionMethods),
  ]);
}

const u8vec = (max: number) => fc.uint8Array({ maxLength: max }).map((u) => Buffer.from(u));
const u16list = fc.array(fc.nat(0xffff), { maxLength: 12 });
const KNOWN = new Set<number>(Object.values(ExtensionType));

type ExtensionCase = { ext: Extension; field?: Partial<Record<keyof ClientExtensions, unknown>> };

/** A known extension: a value, how the wire writes it, and the parsed field it must come back as. */
function known<V>(
  value: fc.Arbitrary<V>,
  type: number,
  field: keyof ClientExtensions,
  write: (v: V) => Buffer,
): fc.Arbitrary<ExtensionCase> {
  return value.map((v) => ({ ext: [type, write(v)], field: { [field]: v } }));
}

/** One well-formed extension and what it must parse to (nothing, for extensions the server ignores). */
const extensionArbitrary: fc.Arbitrary<ExtensionCase> = fc.oneof(
  known(fc.constant(true), ExtensionType.extendedMasterSecret, 'extendedMasterSecret', () => EMPTY),
  known(u8vec(40), ExtensionType.renegotiationInfo, 'renegotiationInfo', (v) => vec(1, v)),
  known(fc.integer({ min: 64, max: 0xffff }), ExtensionType.recordSizeLimit, 'recordSizeLimit', (n) =>
    u16s([n]),
  ),
  known(u8vec(255), ExtensionType.connectionId, 'connectionId', (v) => vec(1, v)),
  known(u16list, ExtensionType.supportedGroups, 'supportedGroups', (l) => vec(2, u16s(l))),
  known(u8vec(8), ExtensionType.ecPointFormats, 'pointFormats', (v) => vec(1, v)),
  known(u16list, ExtensionType.signatureAlgorithms, 'signatureAlgorithms', (l) => vec(2, u16s(l))),
  known(u8vec(4), ExtensionType.clientCertificateType, 'clientCertificateTypes', (v) => vec(1, v)),
  known(u8vec(4), ExtensionType.serverCertificateType, 'serverCertificateTypes', (v) => vec(1, v)),
  fc
    .tuple(
      fc.nat(0xffff).filter((t) => !KNOWN.has(t)),
      u8vec(30),
    )
    .map(([t, v]) => ({ ext: [t, v] as Extension })),
);

const builtArbitrary: fc.Arbitrary<HelloInput> = fc
  .record({
    clientVersion: fc.oneof(fc.constantFrom(0xfefd, 0xfeff, 0xfefc), fc.nat(0xffff)),
    random: bytesOf(RANDOM_BYTES),
    sessionId: u8vec(32),
    cookie: u8vec(255),
    cipherSuites: fc.array(fc.nat(0xffff), { minLength: 1, maxLength: 20 }),
    compressionMethods: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((u) => Buffer.from(u)),
    extensions: fc.uniqueArray(extensionArbitrary, { selector: (e) => e.ext[0], maxLength: 12 }),
    withBlock: fc.boolean(),
  })
  .map(({ extensions: exts, withBlock, ...fields }) => {
    const expected: Record<string, unknown> = {
      extendedMasterSecret: false,
      renegotiationInfo: undefined,
      recordSizeLimit: undefined,
      connectionId: undefined,
      supportedGroups: undefined,
      pointFormats: undefined,
      signatureAlgorithms: undefined,
      clientCertificateTypes: undefined,
      serverCertificateTypes: undefined,
    };
    for (const e of exts) Object.assign(expected, e.field);
    const built: ClientHello = { ...fields, extensions: expected as unknown as ClientExtensions };
    const block = exts.length > 0 || withBlock ? vec(2, extensionBlock(exts.map((e) => e.ext))) : EMPTY;
    return { body: Buffer.concat([helloFields(built), block]), built };
  });

function same(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  return a === b;
}

/** Checks a parsed ClientHello against its body: the leading fields re-encode, the rest is an extension block. */
export function checkClientHello(body: Buffer, h: ClientHello): void {
  must(h.sessionId.length <= 32 && h.cipherSuites.length > 0, 'session id ≤ 32 bytes, some cipher suite');
  const fields = helloFields(h);
  must(body.subarray(0, fields.length).equals(fields), 'the parsed fields re-encode to the body');
  const rest = body.subarray(fields.length);
  if (rest.length === 0) return;
  must(rest.length >= 2 && rest.readUInt16BE(0) === rest.length - 2, 'the rest is one extension block');
  must(parseClientExtensions(rest.subarray(2)) !== undefined, 'its extensions parse alone too');
}

export const dtlsHello: FuzzTarget<HelloInput> = {
  name: 'dtls-client-hello',
  description:
    'parseClientHello / parseClientExtensions: undefined or fields that re-encode; built hellos round trip',
  shortRuns: 3000,
  seed: (file) => ({ body: hexFile(file) }),
  arbitrary: (seeds) =>
    fc.oneof(
      { weight: 4, arbitrary: mutatedSeed(seeds.map((s) => s.body)).map((body) => ({ body })) },
      { weight: 1, arbitrary: randomBytes(200).map((body) => ({ body })) },
      { weight: 3, arbitrary: builtArbitrary },
    ),
  check({ body, built }) {
    const h = parseClientHello(body);
    // An extension block parsed on its own (the bytes after a would-be fixed part) must not throw either.
    parseClientExtensions(body);
    if (!h) {
      if (built) fail('a built ClientHello does not parse');
      return;
    }
    checkClientHello(body, h);
    if (!built) return;
    for (const k of Object.keys(built) as (keyof ClientHello)[])
      if (k !== 'extensions') must(same(h[k], built[k]), `field ${k}`);
    for (const k of Object.keys(built.extensions) as (keyof ClientExtensions)[])
      must(same(h.extensions[k], built.extensions[k]), `extension field ${k}`);
  },
};
