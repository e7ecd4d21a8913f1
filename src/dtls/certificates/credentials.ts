/**
 * The certificate material of the DTLS server: its own credential (`dtls.certificate`: PEM chain and P-256
 * key) and the verifier of client certificates built from `dtls.trustAnchors`. Read at start (an error
 * stops the start, naming the file) and again whenever a file is replaced; a reload that fails keeps what
 * was loaded before and says why in the log.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { DtlsConfig } from '../../config/dtls.js';
import { watchFiles } from '../../ops/file-watch.js';
import type { Logger } from '../../ops/logger.js';
import { pemCertificates, PeerVerifier, readTrustAnchors } from './peer-verifier.js';

export interface ServerCredential {
  readonly key: KeyObject;
  /** Body of the server's Certificate message with the X.509 chain. */
  readonly x509Body: Buffer;
  /** Body of the server's Certificate message with its raw public key (RFC 7250). */
  readonly rpkBody: Buffer;
}

function vec24(parts: readonly Buffer[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const head = Buffer.alloc(3);
  head.writeUIntBE(n, 0, 3);
  return Buffer.concat([head, ...parts]);
}

/** Builds the server credential from PEM texts; throws saying what is wrong. */
function serverCredential(chainPem: string, keyPem: string): ServerCredential {
  const chain = pemCertificates(chainPem);
  if (chain.length === 0) throw new Error('no certificate in the certificate file');
  const leaf = new X509Certificate(chain[0]);
  const key = createPrivateKey(keyPem);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1')
    throw new Error('the key must be a P-256 (prime256v1) EC key');
  if (!leaf.checkPrivateKey(key)) throw new Error('the key does not belong to the first certificate');
  const spki = leaf.publicKey.export({ format: 'der', type: 'spki' });
  return {
    key,
    x509Body: vec24(chain.map((der) => vec24([der]))),
    rpkBody: vec24([spki]),
  };
}

export class DtlsCredentials {
  server: ServerCredential | undefined;
  verifier: PeerVerifier | undefined;
  private readonly unwatch: () => void = () => {};

  constructor(
    private readonly config: DtlsConfig,
    private readonly log: Logger,
    private readonly onCacheCap: () => void,
    watch = true,
  ) {
    this.load();
    const files = [config.certificate?.certFile, config.certificate?.keyFile, config.trustAnchors].filter(
      (f): f is string => f !== undefined,
    );
    if (watch && files.length > 0)
      this.unwatch = watchFiles(files, () => this.reload(), log, 'DTLS certificate files');
  }

  /** Reads the files again; keeps the loaded material when they are invalid. */
  reload(): boolean {
    try {
      this.load();
      this.log.info('DTLS certificate files reloaded');
      return true;
    } catch (err) {
      this.log.error(
        { err: (err as Error).message },
        'DTLS certificate files rejected; keeping the ones loaded before',
      );
      return false;
    }
  }

  close(): void {
    this.unwatch();
  }

  private load(): void {
    const { server, verifier } = readCredentials(this.config, this.onCacheCap);
    this.server = server;
    this.verifier = verifier;
  }
}

/** Reads `dtls.certificate` and `dtls.trustAnchors`; throws an Error naming the key and file at fault. */
function readCredentials(
  config: DtlsConfig,
  onCacheCap: () => void,
): { server?: ServerCredential; verifier?: PeerVerifier } {
  const { certificate, trustAnchors } = config;
  let server: ServerCredential | undefined;
  if (certificate) {
    const chain = read(certificate.certFile, 'dtls.certificate.certFile');
    const key = read(certificate.keyFile, 'dtls.certificate.keyFile');
    try {
      server = serverCredential(chain, key);
    } catch (err) {
      throw new Error(
        `dtls.certificate (${certificate.certFile}, ${certificate.keyFile}): ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  let verifier: PeerVerifier | undefined;
  if (trustAnchors) {
    const pem = read(trustAnchors, 'dtls.trustAnchors');
    try {
      verifier = new PeerVerifier(
        readTrustAnchors(pem),
        config.maxChainDepth,
        config.verifiedCertificateCacheEntries,
        onCacheCap,
      );
    } catch (err) {
      throw new Error(`dtls.trustAnchors ${trustAnchors}: ${(err as Error).message}`, { cause: err });
    }
  }
  return { server, verifier };
}

/** What is wrong with the DTLS certificate files (for the start-up checks): empty when they load. */
export function credentialProblems(config: DtlsConfig): string[] {
  try {
    readCredentials(config, () => {});
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

function read(file: string, key: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, {
      cause: err,
    });
  }
}
