/**
 * AWS IoT Core certificate mode: a device certificate is accepted only while IoT Core says it is ACTIVE
 * (iot:DescribeCertificate; the certificate id is the SHA-256 of the DER certificate, its fingerprint) and
 * attached to the device's thing (iot:ListThingPrincipals). Answers are cached for a TTL, at most a bounded
 * number of them (the oldest make room, reported as the cap `dtls_aws_iot_answers`); concurrent handshakes of
 * one certificate or thing share one call. A call that fails or times out refuses the handshake.
 */
import { BoundedMap } from '../../collections/bounded-map.js';
import type { DtlsConfig } from '../../config/dtls.js';

/** What IoT Core says of a certificate for a thing. */
export type CertificateStatusAnswer = 'active' | 'revoked' | 'not_attached' | 'not_registered';

/** Checks a device certificate with an authority beyond the trust anchors (AWS IoT Core). */
export interface CertificateStatus {
  check(fingerprint: string, thing: string): Promise<CertificateStatusAnswer>;
}

interface CertificateInfo {
  readonly arn: string;
  readonly active: boolean;
}

/** The two control-plane calls, as the SDK makes them. */
export interface IotControlPlane {
  /** undefined when IoT Core does not know the certificate. */
  describeCertificate(certificateId: string): Promise<CertificateInfo | undefined>;
  /** The principals (certificate ARNs…) attached to the thing; empty when the thing does not exist. */
  thingPrincipals(thing: string): Promise<string[]>;
}

type AwsIotConfig = DtlsConfig['awsIot'];

/** A negative answer is checked again unless it is this recent (a device just provisioned gets in). */
const FRESH_MS = 1000;

interface Entry<T> {
  readonly value: Promise<T>;
  readonly at: number;
}

/** A TTL cache of promises with a bound on entries (the oldest makes room). */
class AnswerCache<T> {
  private readonly entries: BoundedMap<string, Entry<T>>;

  constructor(
    private readonly ttlMs: number,
    max: number,
    onCap: () => void,
  ) {
    this.entries = new BoundedMap({ maxEntries: max, ttlMs, onCap: () => onCap() });
  }

  /** The cached answer, or a new one (`fresh`: ask again unless the answer is under a second old). */
  get(key: string, load: () => Promise<T>, fresh = false): Promise<T> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && now - hit.at < (fresh ? FRESH_MS : this.ttlMs)) return hit.value;
    const value = load();
    this.entries.set(key, { value, at: now });
    // A failed call is not remembered: the next handshake asks again.
    value.catch(() => {
      if (this.entries.get(key)?.value === value) this.entries.delete(key);
    });
    return value;
  }

  get size(): number {
    return this.entries.size;
  }
}

class AwsIotCertificateStatus implements CertificateStatus {
  private readonly certificates: AnswerCache<CertificateInfo | undefined>;
  private readonly principals: AnswerCache<ReadonlySet<string>>;

  constructor(
    private readonly api: IotControlPlane,
    config: Pick<AwsIotConfig, 'cacheTtlMs' | 'cacheEntries'>,
    onCap: () => void,
  ) {
    this.certificates = new AnswerCache(config.cacheTtlMs, config.cacheEntries, onCap);
    this.principals = new AnswerCache(config.cacheTtlMs, config.cacheEntries, onCap);
  }

  /**
   * ACTIVE and attached answers are reused for the TTL; a negative one is asked again (at most once a second
   * per certificate or thing), so that a certificate registered or attached a moment ago works at once
   * while a revocation takes effect within the TTL.
   */
  async check(fingerprint: string, thing: string): Promise<CertificateStatusAnswer> {
    let answer = await this.ask(fingerprint, thing, false);
    if (answer !== 'active') answer = await this.ask(fingerprint, thing, true);
    return answer;
  }

  private async ask(fingerprint: string, thing: string, fresh: boolean): Promise<CertificateStatusAnswer> {
    const [certificate, attached] = await Promise.all([
      this.certificates.get(fingerprint, () => this.api.describeCertificate(fingerprint), fresh),
      this.principals.get(thing, async () => new Set(await this.api.thingPrincipals(thing)), fresh),
    ]);
    if (!certificate) return 'not_registered';
    if (!certificate.active) return 'revoked';
    return attached.has(certificate.arn) ? 'active' : 'not_attached';
  }

  /** Cached answers (certificates and things). */
  get cached(): number {
    return this.certificates.size + this.principals.size;
  }
}

/** The control plane through the AWS SDK's IoT client (loaded only in this mode: it is large). */
async function sdkControlPlane(
  config: AwsIotConfig,
  credentials?: import('@aws-sdk/client-iot').IoTClientConfig['credentials'],
): Promise<IotControlPlane> {
  const { IoTClient, DescribeCertificateCommand, ListThingPrincipalsCommand, ResourceNotFoundException } =
    await import('@aws-sdk/client-iot');
  const client = new IoTClient({
    ...(config.region ? { region: config.region } : {}),
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    ...(credentials ? { credentials } : {}),
    maxAttempts: 2,
  });
  const signal = () => AbortSignal.timeout(config.timeoutMs);
  return {
    async describeCertificate(certificateId) {
      try {
        const out = await client.send(new DescribeCertificateCommand({ certificateId }), {
          abortSignal: signal(),
        });
        const d = out.certificateDescription;
        return d?.certificateArn ? { arn: d.certificateArn, active: d.status === 'ACTIVE' } : undefined;
      } catch (err) {
        if (err instanceof ResourceNotFoundException) return undefined;
        throw err;
      }
    },
    async thingPrincipals(thingName) {
      const out: string[] = [];
      let nextToken: string | undefined;
      try {
        do {
          const page = await client.send(new ListThingPrincipalsCommand({ thingName, nextToken }), {
            abortSignal: signal(),
          });
          out.push(...(page.principals ?? []));
          nextToken = page.nextToken;
        } while (nextToken);
      } catch (err) {
        if (err instanceof ResourceNotFoundException) return [];
        throw err;
      }
      return out;
    },
  };
}

/**
 * The AWS IoT Core certificate mode of `dtls.awsIot`: the SDK client is made at the first check (its module
 * loads only in this mode), with the default credential chain (IRSA, EKS Pod Identity, environment) unless
 * `credentials` are given.
 */
export function awsIotCertificateStatus(
  config: AwsIotConfig,
  onCap: () => void,
  credentials?: import('@aws-sdk/client-iot').IoTClientConfig['credentials'],
): CertificateStatus {
  let status: Promise<AwsIotCertificateStatus> | undefined;
  return {
    check(fingerprint, thing) {
      status ??= sdkControlPlane(config, credentials).then(
        (api) => new AwsIotCertificateStatus(api, config, onCap),
      );
      return status.then((s) => s.check(fingerprint, thing));
    },
  };
}
