/**
 * The handshake messages a client sends after its hello, as the server parses them: ClientKeyExchange for
 * PSK (RFC 4279 §2), ECDHE-ECDSA (RFC 8422 §5.7) and ECDHE-PSK (RFC 5489 §2), the client's Certificate as an
 * X.509 list or a raw public key (RFC 7250 §3) and CertificateVerify (RFC 5246 §7.4.8). Every parser takes
 * a whole body or refuses it: so what parses must re-encode to exactly the body, and nothing may throw.
 */
import fc from 'fast-check';
import { parsePskClientKeyExchange } from '../../../src/dtls/protocol/handshake.js';
import {
  parseCertificateList,
  parseCertificateVerify,
  parseEcdhClientKeyExchange,
  parseEcdhePskClientKeyExchange,
  parseRawPublicKey,
} from '../../../src/dtls/protocol/ecc-messages.js';
import { hexFile, must, mutatedSeed, randomBytes, vec, type FuzzTarget } from '../target.js';

/** Every parser of a body after the ClientHello, with the encoding that must give the body back. */
const PARSERS: readonly { name: string; reencode: (body: Buffer) => Buffer[] | undefined }[] = [
  {
    name: 'psk-client-key-exchange',
    reencode: (b) => {
      const id = parsePskClientKeyExchange(b);
      return id && [vec(2, id)];
    },
  },
  {
    name: 'ecdh-client-key-exchange',
    reencode: (b) => {
      const point = parseEcdhClientKeyExchange(b);
      if (point) must(point.length > 0, 'a point is never empty');
      return point && [vec(1, point)];
    },
  },
  {
    name: 'ecdhe-psk-client-key-exchange',
    reencode: (b) => {
      const r = parseEcdhePskClientKeyExchange(b);
      return r && [Buffer.concat([vec(2, r.identity), vec(1, r.point)])];
    },
  },
  {
    name: 'certificate-verify',
    reencode: (b) => {
      const r = parseCertificateVerify(b);
      if (!r) return undefined;
      const alg = Buffer.alloc(2);
      alg.writeUInt16BE(r.algorithm);
      return [Buffer.concat([alg, vec(2, r.signature)])];
    },
  },
  {
    name: 'certificate-list',
    reencode: (b) => {
      const list = parseCertificateList(b);
      if (list)
        must(
          list.every((c) => c.length > 0),
          'no empty certificate in a list',
        );
      return list && [vec(3, Buffer.concat(list.map((c) => vec(3, c))))];
    },
  },
  {
    name: 'raw-public-key',
    reencode: (b) => {
      const spki = parseRawPublicKey(b);
      // Either the bare SubjectPublicKeyInfo, or (for a key not starting with a SEQUENCE) one wrapped in a list.
      return spki && [vec(3, spki), vec(3, vec(3, spki))];
    },
  },
];

/** Well-formed bodies of each kind, so mutations start from something that parses. */
const builtArbitrary = fc.oneof(
  randomBytes(40).map((id) => vec(2, id)),
  randomBytes(70).map((p) => vec(1, p)),
  fc.tuple(randomBytes(40), randomBytes(70)).map(([id, p]) => Buffer.concat([vec(2, id), vec(1, p)])),
  fc.tuple(fc.nat(0xffff), randomBytes(80)).map(([alg, sig]) => {
    const a = Buffer.alloc(2);
    a.writeUInt16BE(alg);
    return Buffer.concat([a, vec(2, sig)]);
  }),
  fc.array(randomBytes(60), { maxLength: 4 }).map((l) => vec(3, Buffer.concat(l.map((c) => vec(3, c))))),
);

export const dtlsKeyExchange: FuzzTarget<Buffer> = {
  name: 'dtls-key-exchange',
  description:
    'ClientKeyExchange (PSK, ECDHE, ECDHE-PSK), Certificate, CertificateVerify: whole body or refused',
  shortRuns: 3000,
  seed: (file) => hexFile(file),
  arbitrary: (seeds) =>
    fc.oneof(
      { weight: 3, arbitrary: mutatedSeed(seeds) },
      { weight: 1, arbitrary: randomBytes(120) },
      { weight: 2, arbitrary: builtArbitrary },
      { weight: 1, arbitrary: builtArbitrary.chain((b) => mutatedSeed([b], 3)) },
    ),
  check(body) {
    checkKeyExchange(body);
  },
};

/** Runs every parser of post-hello messages on `body` and checks what parses re-encodes to it. */
export function checkKeyExchange(body: Buffer): void {
  for (const p of PARSERS) {
    const encodings = p.reencode(body);
    if (encodings)
      must(
        encodings.some((e) => e.equals(body)),
        `${p.name}: the parse re-encodes to the body`,
      );
  }
}
