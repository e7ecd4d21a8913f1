/**
 * The `dtls:` section: CoAP over DTLS 1.2 on `coap.dtlsPort` with pre-shared keys, X.509 certificates and raw
 * public keys.
 */
import { z } from 'zod';

export const CIPHER_SUITE_NAMES = [
  'TLS_PSK_WITH_AES_128_CCM_8',
  'TLS_PSK_WITH_AES_128_GCM_SHA256',
  'TLS_PSK_WITH_AES_128_CCM',
  'TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8',
  'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256',
  'TLS_ECDHE_PSK_WITH_AES_128_CCM_8_SHA256',
] as const;

export const CLIENT_IDENTITY_RULES = ['fingerprint', 'cn', 'san-uri', 'san-dns'] as const;
export type ClientIdentityRule = (typeof CLIENT_IDENTITY_RULES)[number];
export type CipherSuiteName = (typeof CIPHER_SUITE_NAMES)[number];

export const dtlsSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Serve CoAP over DTLS 1.2 on `coap.dtlsPort`.'),
    cipherSuites: z
      .array(z.enum(CIPHER_SUITE_NAMES))
      .min(1)
      .default([...CIPHER_SUITE_NAMES])
      .describe(
        'Cipher suites offered, in the server’s order of preference. TLS_PSK_WITH_AES_128_CCM_8 is the CoAP mandatory suite for PSK and the smallest on the air; TLS_ECDHE_ECDSA_WITH_AES_128_CCM_8 the one for certificates and raw public keys (offered only with `dtls.certificate`).',
      ),
    certificate: z
      .strictObject({
        certFile: z
          .string()
          .min(1)
          .describe(
            'PEM certificate chain of the gateway, its own certificate first (in raw-public-key mode its public key is what the client sees). Reloaded when it changes.',
          ),
        keyFile: z
          .string()
          .min(1)
          .describe('PEM private key (P-256) of the gateway. Reloaded when it changes.'),
      })
      .optional()
      .describe(
        'The gateway’s own credential, needed for the ECDHE-ECDSA suites (X.509 client certificates and raw public keys).',
      ),
    trustAnchors: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PEM bundle of the CA certificates X.509 client certificates must chain to. Reloaded when it changes. Without it, devices authenticate by PSK or raw public key only.',
      ),
    clientIdentity: z
      .enum(CLIENT_IDENTITY_RULES)
      .default('fingerprint')
      .describe(
        'How an X.509 client certificate names its device: `fingerprint` (SHA-256 of the certificate listed as `x509.fingerprint` in the device file), `cn` (subject CN equal to `x509.subject`, the device id or its thing), `san-uri` / `san-dns` (a subjectAltName URI / DNS name equal to the device id or its thing).',
      ),
    maxChainDepth: z
      .number()
      .int()
      .min(0)
      .max(8)
      .default(3)
      .describe(
        'Most intermediate CA certificates accepted between a client certificate and a trust anchor.',
      ),
    verifiedCertificateCacheEntries: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe(
        'Client certificate chains whose verification is remembered (by fingerprint, until the earliest expiry in the chain), so a device that reconnects costs no chain verification; 0 disables the cache.',
      ),
    awsIot: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Accept an X.509 device certificate only while AWS IoT Core says it is ACTIVE and attached to the device’s thing (iot:DescribeCertificate, iot:ListThingPrincipals), so revoking or detaching it in IoT Core locks the device out. `trustAnchors` holds the CA that issued the certificates (the account’s registered CA, or Amazon’s).',
          ),
        region: z
          .string()
          .default('')
          .describe('AWS region of the IoT Core account. Empty: the SDK default (AWS_REGION, profile).'),
        endpoint: z
          .string()
          .default('')
          .describe(
            'Control-plane endpoint URL (a VPC endpoint, say). Empty: AWS_ENDPOINT_URL_IOT, else the regional endpoint.',
          ),
        cacheTtlMs: z
          .number()
          .int()
          .min(1000)
          .default(300_000)
          .describe(
            'How long an answer of IoT Core (certificate status, thing principals) is reused: the longest a revoked certificate can still start a session.',
          ),
        cacheEntries: z
          .number()
          .int()
          .min(1)
          .default(100_000)
          .describe('Cap on cached answers (certificates and things); the oldest make room.'),
        timeoutMs: z
          .number()
          .int()
          .min(100)
          .default(5000)
          .describe(
            'Time limit of one IoT Core call; a handshake whose check fails or times out is refused.',
          ),
      })
      .prefault({})
      .describe('AWS IoT Core certificate mode (docs/dtls.md).'),
    pathMtu: z
      .number()
      .int()
      .min(256)
      .max(65_535)
      .default(1280)
      .describe(
        'Path MTU towards devices: handshake flights (certificate chains) are fragmented into datagrams that fit it after the IP and UDP headers.',
      ),
    requireExtendedMasterSecret: z
      .boolean()
      .default(false)
      .describe(
        'Refuse clients that do not offer the extended master secret (RFC 7627). It is always used when offered.',
      ),
    connectionIdLength: z
      .number()
      .int()
      .min(0)
      .max(32)
      .default(6)
      .describe(
        'Length in bytes of the Connection ID (RFC 9146) the server asks clients to send; 0 disables Connection IDs.',
      ),
    retransmitInitialMs: z
      .number()
      .int()
      .min(100)
      .max(60_000)
      .default(1000)
      .describe('First handshake flight retransmission timeout; it doubles on every retransmission.'),
    retransmitMaxMs: z
      .number()
      .int()
      .min(100)
      .max(600_000)
      .default(60_000)
      .describe(
        'Largest handshake retransmission timeout; the handshake fails once a flight has waited this long.',
      ),
    handshakeTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(3_600_000)
      .default(180_000)
      .describe(
        'A handshake that has not completed after this long is dropped (slow registry, lost flights).',
      ),
    idleTimeoutMs: z
      .number()
      .int()
      .min(10_000)
      .default(24 * 3600_000)
      .describe('A session with no authenticated record for this long is removed (devices sleep for hours).'),
    maxSessions: z
      .number()
      .int()
      .min(1)
      .default(250_000)
      .describe(
        'Cap on established sessions; when full, the session idle the longest makes room for a new one.',
      ),
    maxHandshakes: z
      .number()
      .int()
      .min(1)
      .default(10_000)
      .describe(
        'Cap on handshakes in progress (after a valid cookie); when it is reached, a new handshake evicts the oldest one in progress.',
      ),
    maxHandshakesPerAddress: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe(
        'Cap on handshakes in progress from one IPv4 address or one IPv6 prefix of `ipv6PrefixLength` bits (carrier NATs put many devices behind one); more from there are refused until some finish.',
      ),
    ipv6PrefixLength: z
      .number()
      .int()
      .min(1)
      .max(128)
      .default(64)
      .describe(
        'IPv6 addresses count against `maxHandshakesPerAddress` by this prefix (a /64 is usually one subscriber or host); 128 counts each address alone.',
      ),
    maxHandshakeMessageBytes: z
      .number()
      .int()
      .min(256)
      .max(65_536)
      .default(4096)
      .describe('Largest incoming handshake message reassembled from fragments.'),
    maxReassemblyBytes: z
      .number()
      .int()
      .min(65_536)
      .default(4 * 1024 * 1024)
      .describe(
        'Cap on the bytes held by all handshakes for fragmented or out-of-order handshake messages; fragments beyond it are dropped (the client sends them again).',
      ),
    cookieSecretRotationMs: z
      .number()
      .int()
      .min(1000)
      .default(300_000)
      .describe('How often the HelloVerifyRequest cookie secret changes (the previous one stays valid).'),
    identityHint: z
      .string()
      .max(128)
      .default('')
      .describe('PSK identity hint sent in a ServerKeyExchange; empty sends none (the usual choice).'),
  })
  .superRefine((d, ctx) => {
    if (d.trustAnchors !== undefined && d.certificate === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['trustAnchors'],
        message: 'X.509 client certificates need the gateway’s own credential: set dtls.certificate too',
      });
    if (d.awsIot.enabled && d.trustAnchors === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['awsIot', 'enabled'],
        message:
          'the AWS IoT Core mode verifies X.509 certificates: set dtls.trustAnchors (and dtls.certificate)',
      });
  })
  .prefault({});

export type DtlsConfig = z.infer<typeof dtlsSchema>;
