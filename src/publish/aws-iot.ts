/**
 * The `aws-iot` sink: publishes through the IoT Data Plane HTTPS API (`POST /topics/{topic}`), signed with
 * SigV4 by the AWS SDK's own signer and credential provider chain (IRSA, Pod Identity, environment, profile).
 *
 * A naive `client.send(new PublishCommand())` spends most of its time in the SDK client's middleware
 * pipeline (endpoint rules, schema serialisation, retry strategy, user agent, a dozen promise hops) and in
 * Node's HTTP client. This sink builds the request itself, has the SDK's signer sign it, and sends it over a
 * keep-alive connection pool (undici) with one handler object per attempt. Retries, time-outs and the circuit
 * breaker are in `Delivery`.
 */
import { IoTDataPlaneClient, type IoTDataPlaneClientConfig } from '@aws-sdk/client-iot-data-plane';
import { rootCertificates } from 'node:tls';
import { Pool, type Dispatcher } from 'undici';
import type { AwsIotPublisherConfig } from '../config/publisher.js';
import { ConfigError } from '../config/errors.js';
import type { Logger } from '../ops/logger.js';
import type { AttemptListener, DeliveryJob, Sink, SinkFailure } from './delivery.js';
import {
  errorCode,
  failureKind,
  isClockSkewCode,
  publishPath,
  regionOfEndpoint,
  userPropertiesHeader,
} from './iot-wire.js';
import { messageBody } from './publisher.js';

/** IoT Core's largest message payload. */
export const MAX_PAYLOAD_BYTES = 128 * 1024;
const MAX_ERROR_BODY = 4096;
const CLOCK_SKEW_MIN_MS = 60_000;

/** The SDK's SigV4 signer, as the client configures it. */
type RequestSigner = Awaited<ReturnType<IoTDataPlaneClient['config']['signer']>>;
type SignerInput = Parameters<RequestSigner['sign']>[0];

export interface AwsIotSinkOptions {
  /** Endpoint URL (`https://<prefix>-ats.iot.<region>.amazonaws.com`). */
  endpoint: URL;
  region: string;
  qos: 0 | 1;
  /** Keep-alive connections to the endpoint. */
  connections: number;
  /** Credentials to use instead of the SDK's default provider chain. */
  credentials?: IoTDataPlaneClientConfig['credentials'];
  maxPayloadBytes?: number;
  /** Extra CA certificates (PEM) to trust for the endpoint, besides the system's. */
  ca?: Buffer;
}

interface SignableRequest {
  method: string;
  protocol: string;
  hostname: string;
  port?: number;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  body: Buffer;
}

/** Resolves `publisher.endpoint` (host name or URL; empty: AWS_ENDPOINT_URL_IOT_DATA_PLANE). */
export function endpointUrl(endpoint: string, env: NodeJS.ProcessEnv = process.env): URL {
  const value = endpoint || env.AWS_ENDPOINT_URL_IOT_DATA_PLANE || env.AWS_ENDPOINT_URL || '';
  if (!value) {
    throw new ConfigError(
      'publisher.endpoint is required for publisher.type aws-iot: set it (or CELLGATE_PUBLISHER__ENDPOINT, ' +
        'or AWS_ENDPOINT_URL_IOT_DATA_PLANE) to the output of `aws iot describe-endpoint --endpoint-type iot:Data-ATS`',
    );
  }
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `https://${value}`);
  } catch {
    throw new ConfigError(
      `publisher.endpoint "${value}" is neither a host name nor a URL: give the host name from ` +
        '`aws iot describe-endpoint --endpoint-type iot:Data-ATS`',
    );
  }
}

/** Where the sink publishes: the endpoint, and the region it signs for. Throws a ConfigError saying what is missing. */
export function awsIotTarget(
  config: Pick<AwsIotPublisherConfig, 'endpoint' | 'region'>,
  env: NodeJS.ProcessEnv = process.env,
): { endpoint: URL; region: string } {
  const endpoint = endpointUrl(config.endpoint, env);
  const region =
    config.region || regionOfEndpoint(endpoint.hostname) || env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (!region) {
    throw new ConfigError(
      'publisher.region is required for publisher.type aws-iot: set it (or CELLGATE_PUBLISHER__REGION, or ' +
        'AWS_REGION), or use an endpoint named *.iot.<region>.amazonaws.com',
    );
  }
  return { endpoint, region };
}

export class AwsIotSink implements Sink {
  readonly type = 'aws-iot';
  private readonly pool: Pool;
  private readonly query: Record<string, string>;
  private readonly queryString: string;
  private readonly maxPayload: number;
  private clockOffsetMs = 0;

  private constructor(
    private readonly opts: AwsIotSinkOptions,
    private readonly client: IoTDataPlaneClient,
    private readonly signer: RequestSigner,
    private readonly log: Logger,
  ) {
    this.pool = new Pool(opts.endpoint.origin, {
      connections: opts.connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      // Time-outs are enforced by Delivery (it aborts the attempt); these only stop a stuck socket.
      headersTimeout: 0,
      bodyTimeout: 0,
      ...(opts.ca ? { connect: { ca: [...rootCertificates, opts.ca.toString()] } } : {}),
    });
    this.query = { contentType: 'application/json', qos: String(opts.qos) };
    this.queryString = `?contentType=application%2Fjson&qos=${opts.qos}`;
    this.maxPayload = opts.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
  }

  /** Builds the sink: an SDK client for its resolved configuration, and the signer that client would use. */
  static async create(opts: AwsIotSinkOptions, log: Logger): Promise<AwsIotSink> {
    const client = new IoTDataPlaneClient({
      region: opts.region,
      endpoint: opts.endpoint.toString(),
      maxAttempts: 1,
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
    });
    const signer = await client.config.signer();
    client.config.credentials().catch((err: unknown) => {
      log.warn({ err: (err as Error).message }, 'aws-iot publisher: AWS credentials are not available yet');
    });
    return new AwsIotSink(opts, client, signer, log);
  }

  /** Builds the sink from the `publisher` config section. */
  static fromConfig(
    config: AwsIotPublisherConfig,
    log: Logger,
    env: NodeJS.ProcessEnv = process.env,
  ): Promise<AwsIotSink> {
    const { endpoint, region } = awsIotTarget(config, env);
    return AwsIotSink.create({ endpoint, region, qos: config.qos, connections: config.connections }, log);
  }

  start(job: DeliveryJob, listener: AttemptListener): void {
    const msg = job.msg;
    const body = messageBody(msg);
    if (body.length > this.maxPayload) {
      return listener.settle(job, job.attempt, {
        kind: 'rejected',
        message: `payload of ${body.length} bytes is over the ${this.maxPayload}-byte limit`,
      });
    }
    const endpoint = this.opts.endpoint;
    const req: SignableRequest = {
      method: 'POST',
      protocol: endpoint.protocol,
      hostname: endpoint.hostname,
      port: endpoint.port ? Number(endpoint.port) : undefined,
      path: publishPath(msg.topic),
      query: this.query,
      headers: {
        host: endpoint.host,
        'content-type': 'application/octet-stream',
        'content-length': String(body.length),
        'x-amz-mqtt5-payload-format-indicator': 'UTF8_DATA',
        'x-amz-mqtt5-user-properties': userPropertiesHeader([
          ['messageId', msg.id],
          ['deviceId', msg.deviceId],
        ]),
      },
      body,
    };
    const attempt = new PublishAttempt(this, job, job.attempt, listener);
    job.handle = attempt;
    this.signer
      .sign(req as unknown as SignerInput, {
        signingDate: new Date(Date.now() + this.clockOffsetMs),
        signingRegion: this.opts.region,
      })
      .then(
        (signed) => attempt.send(signed as unknown as SignableRequest),
        (err: unknown) =>
          attempt.fail({ kind: 'auth', message: `signing failed: ${(err as Error).message}` }),
      );
  }

  abort(job: DeliveryJob): void {
    (job.handle as PublishAttempt | undefined)?.cancel();
  }

  async close(): Promise<void> {
    await this.pool.destroy();
    this.client.destroy();
  }

  /** @internal Sends a signed attempt. */
  dispatch(signed: SignableRequest, handler: PublishAttempt): void {
    this.pool.dispatch(
      { method: 'POST', path: signed.path + this.queryString, headers: signed.headers, body: signed.body },
      handler,
    );
  }

  /** @internal An error answer: classify it, learning the server's clock when a signature was refused for skew. */
  failure(
    status: number,
    errorType: string | undefined,
    date: string | undefined,
    body: string,
  ): SinkFailure {
    const { code, message } = errorCode(errorType, body);
    const text = `HTTP ${status}${code ? ` ${code}` : ''}${message ? `: ${message}` : ''}`.slice(0, 300);
    if ((status === 401 || status === 403) && isClockSkewCode(code) && date) {
      const server = Date.parse(date);
      if (!Number.isNaN(server)) {
        const offset = server - Date.now();
        if (Math.abs(offset - this.clockOffsetMs) >= CLOCK_SKEW_MIN_MS) {
          this.clockOffsetMs = offset;
          this.log.warn(
            { clockOffsetMs: offset },
            'aws-iot publisher: corrected clock skew for request signing',
          );
          return { kind: 'stale', message: text };
        }
      }
    }
    return { kind: failureKind(status, code), message: text };
  }
}

/** One attempt of one message: the undici handler of its request, so no closures per request. */
class PublishAttempt implements Dispatcher.DispatchHandlers {
  private abortFn?: (err?: Error) => void;
  private status = 0;
  private errorType?: string;
  private date?: string;
  private chunks?: Buffer[];
  private size = 0;
  private cancelled = false;

  constructor(
    private readonly sink: AwsIotSink,
    private readonly job: DeliveryJob,
    private readonly attempt: number,
    private readonly listener: AttemptListener,
  ) {}

  send(signed: SignableRequest): void {
    if (this.cancelled) return;
    this.sink.dispatch(signed, this);
  }

  fail(failure: SinkFailure): void {
    this.listener.settle(this.job, this.attempt, failure);
  }

  cancel(): void {
    this.cancelled = true;
    this.abortFn?.(new Error('publish attempt timed out'));
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abortFn = abort;
    if (this.cancelled) abort(new Error('publish attempt timed out'));
  }

  onHeaders(status: number, headers: Buffer[] | string[] | null): boolean {
    this.status = status;
    if ((status < 200 || status >= 300) && headers) {
      this.chunks = [];
      for (let i = 0; i + 1 < headers.length; i += 2) {
        const name = headers[i].toString().toLowerCase();
        if (name === 'x-amzn-errortype') this.errorType = headers[i + 1].toString();
        else if (name === 'date') this.date = headers[i + 1].toString();
      }
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.chunks && this.size < MAX_ERROR_BODY) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    return true;
  }

  onComplete(): void {
    if (this.status >= 200 && this.status < 300) return this.listener.settle(this.job, this.attempt, null);
    const body = this.chunks ? Buffer.concat(this.chunks).toString('utf8', 0, MAX_ERROR_BODY) : '';
    this.fail(this.sink.failure(this.status, this.errorType, this.date, body));
  }

  onError(err: Error & { code?: string }): void {
    if (this.cancelled) return;
    this.fail({ kind: 'network', message: err.code ? `${err.code}: ${err.message}` : err.message });
  }
}
