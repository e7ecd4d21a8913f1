/**
 * The DER walk that reads a certificate's key usage, common name and subjectAltNames
 * (`src/dtls/certificates/der.ts`), fed certificates from the test PKI's kind (made by the openssl command
 * line), mutated, and random bytes: it returns fields or undefined, never throws, and what it returns lies
 * inside the input (the subject DER is a slice of it, the key usage fits its two bytes).
 */
import fc from 'fast-check';
import { certificateFields } from '../../../src/dtls/certificates/der.js';
import { hexFile, must, mutatedSeed, randomBytes, type FuzzTarget } from '../target.js';

export const derCertificate: FuzzTarget<Buffer> = {
  name: 'der-certificate',
  description: 'certificateFields: fields or undefined, never throws; the subject is a slice of the input',
  shortRuns: 2000,
  seed: (file) => hexFile(file),
  arbitrary: (seeds) =>
    fc.oneof({ weight: 6, arbitrary: mutatedSeed(seeds, 8) }, { weight: 1, arbitrary: randomBytes(300) }),
  check(der) {
    const f = certificateFields(der);
    if (!f) return;
    const s = f.subjectDer;
    must(s.buffer === der.buffer && s.byteOffset >= der.byteOffset, 'the subject is a view of the input');
    must(s.byteOffset + s.length <= der.byteOffset + der.length, 'the subject ends inside the input');
    must(f.keyUsage === undefined || (f.keyUsage >= 0 && f.keyUsage <= 0xffff), 'key usage in two bytes');
    must(
      [...f.sanUris, ...f.sanDns].every((n) => n.length < der.length),
      'names shorter than the input',
    );
  },
};
