/**
 * Test PKI made with the openssl command line at test time (nothing long-lived is committed): a root CA, an
 * intermediate CA, the gateway's certificate, device certificates (with SAN URI and DNS names), one from an
 * unknown CA, an expired one, one no device maps to, and raw public keys (P-256 everywhere).
 */
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CA_EXT = 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n';
export const CLIENT_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n';
const SERVER_EXT =
  'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n';

export interface Identity {
  /** PEM certificate (device first, then its issuers up to, not including, the root). */
  readonly cert: string;
  readonly key: string;
  /** Chain file (cert + intermediates) path, key path. */
  readonly certFile: string;
  readonly keyFile: string;
  /** SHA-256 of the DER certificate, lower-case hex. */
  readonly fingerprint: string;
}

export interface RawKey {
  readonly keyFile: string;
  /** Private key and PUBLIC KEY block in one file, as libcoap's -M wants. */
  readonly combinedFile: string;
  readonly publicKeyFile: string;
  /** Base64 DER SubjectPublicKeyInfo. */
  readonly publicKey: string;
  readonly fingerprint: string;
}

export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), 'cellgate-pki-'));
  readonly caFile: string;

  constructor() {
    this.key('ca');
    this.openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      this.path('ca.key'),
      '-subj',
      '/CN=cellgate test root',
      '-days',
      '1',
      '-out',
      this.path('ca.pem'),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
    this.caFile = this.path('ca.pem');
    this.issue('intermediate', '/CN=cellgate test intermediate', 'ca', CA_EXT);
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** The gateway's certificate, issued by the root (or by `issuer`). */
  server(name = 'server', issuer = 'ca'): Identity {
    const ext = `${SERVER_EXT}subjectAltName=DNS:${name}.cellgate.test,IP:127.0.0.1\n`;
    return this.identity(name, `/CN=${name}.cellgate.test`, issuer, ext);
  }

  /**
   * A device certificate with CN `cn`, SAN URI `urn:dev:<cn>` and DNS `<cn>.devices.test`, issued by the
   * intermediate (chain file holds both) unless `issuer` says otherwise. `days` 0 makes it expire at once.
   */
  device(name: string, cn = name, opts: { issuer?: string; days?: number; keyOf?: string } = {}): Identity {
    const ext = `${CLIENT_EXT}subjectAltName=URI:urn:dev:${cn},DNS:${cn}.devices.test\n`;
    return this.identity(name, `/CN=${cn}`, opts.issuer ?? 'intermediate', ext, opts.days ?? 1, opts.keyOf);
  }

  /** A self-made CA the gateway does not trust. */
  rogueCa(name = 'rogue'): void {
    this.key(name);
    this.openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      this.path(`${name}.key`),
      '-subj',
      `/CN=${name} root`,
      '-days',
      '1',
      '-out',
      this.path(`${name}.pem`),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
  }

  /** A CA with an RSA key (as AWS IoT Core's), which can issue P-256 device certificates. */
  rsaCa(name = 'rsa-ca'): string {
    this.openssl(['genrsa', '-out', this.path(`${name}.key`), '2048']);
    this.openssl([
      'req',
      '-x509',
      '-new',
      '-key',
      this.path(`${name}.key`),
      '-subj',
      `/CN=${name}`,
      '-days',
      '1',
      '-out',
      this.path(`${name}.pem`),
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign',
    ]);
    return this.path(`${name}.pem`);
  }

  rawKey(name: string): RawKey {
    const keyFile = this.key(name);
    const pub = createPublicKey(readFileSync(keyFile));
    const der = pub.export({ format: 'der', type: 'spki' });
    const pem = pub.export({ format: 'pem', type: 'spki' }).toString();
    const publicKeyFile = this.path(`${name}.pub.pem`);
    writeFileSync(publicKeyFile, pem);
    const combinedFile = this.path(`${name}.rpk.pem`);
    writeFileSync(combinedFile, readFileSync(keyFile, 'utf8') + pem);
    return {
      keyFile,
      combinedFile,
      publicKeyFile,
      publicKey: der.toString('base64'),
      fingerprint: createHash('sha256').update(der).digest('hex'),
    };
  }

  close(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * A certificate for a new key `<name>.key` (or the key of `keyOf`) with the given subject and extensions
   * (openssl extfile lines), issued by `issuer` (the chain file adds the intermediate when it issued it).
   */
  identity(name: string, subject: string, issuer: string, ext: string, days = 1, keyOf?: string): Identity {
    const cert = this.issue(name, subject, issuer, ext, days, keyOf);
    const chain =
      issuer === 'intermediate' ? cert + readFileSync(this.path('intermediate.pem'), 'utf8') : cert;
    const certFile = this.path(`${name}.chain.pem`);
    writeFileSync(certFile, chain);
    const keyFile = this.path(`${keyOf ?? name}.key`);
    return {
      cert: chain,
      key: readFileSync(keyFile, 'utf8'),
      certFile,
      keyFile,
      fingerprint: createHash('sha256')
        .update(Buffer.from(cert.replace(/-----[^-]+-----|\s/g, ''), 'base64'))
        .digest('hex'),
    };
  }

  private key(name: string): string {
    const file = this.path(`${name}.key`);
    this.openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', file]);
    return file;
  }

  /** Issues `<name>.pem` for a new key `<name>.key` (or the key of `keyOf`); returns the PEM. */
  private issue(
    name: string,
    subject: string,
    issuer: string,
    ext: string,
    days = 1,
    keyOf?: string,
  ): string {
    const keyFile = keyOf ? this.path(`${keyOf}.key`) : this.key(name);
    const extFile = this.path(`${name}.ext`);
    writeFileSync(extFile, ext);
    this.openssl(['req', '-new', '-key', keyFile, '-subj', subject, '-out', this.path(`${name}.csr`)]);
    this.openssl([
      'x509',
      '-req',
      '-in',
      this.path(`${name}.csr`),
      '-CA',
      this.path(`${issuer}.pem`),
      '-CAkey',
      this.path(`${issuer}.key`),
      '-set_serial',
      '0x' + randomBytes(8).toString('hex'),
      '-days',
      String(days),
      '-extfile',
      extFile,
      '-out',
      this.path(`${name}.pem`),
    ]);
    return readFileSync(this.path(`${name}.pem`), 'utf8');
  }

  private openssl(args: string[]): void {
    execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  }
}
