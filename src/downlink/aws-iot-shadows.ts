/**
 * The `aws-iot` shadow source: each thing's named shadow in AWS IoT Device Shadow, through the IoT Data
 * Plane's GetThingShadow / UpdateThingShadow / DeleteThingShadow (AWS SDK, default credential chain: IRSA,
 * Pod Identity, environment, profile). The gateway holds itself to a per-thing request rate below the
 * service's quota (20 requests/s per thing); past it a request fails at once with 429 ThrottlingException,
 * as the service itself would answer.
 */
import { ApiError } from '../state/api-error.js';
import {
  DeleteThingShadowCommand,
  GetThingShadowCommand,
  IoTDataPlaneClient,
  UpdateThingShadowCommand,
  type IoTDataPlaneClientConfig,
} from '@aws-sdk/client-iot-data-plane';
import type { DownlinkConfig } from '../config/downlink.js';
import { KeyedRateLimiter } from './rate-limit.js';
import {
  isJsonObject,
  shadowFromAnswer,
  type ShadowState,
  type ShadowUpdate,
  type UpdateAnswer,
} from './shadow-document.js';
import type { ShadowSource } from './shadow-source.js';

export interface AwsIotShadowOptions {
  name: string;
  endpoint?: string;
  region?: string;
  maxRequestsPerSecondPerThing: number;
  timeoutMs: number;
  maxAttempts: number;
  /** Cap on things with a rate-limit bucket. */
  maxThings: number;
  onCap: (cap: string, n: number) => void;
  credentials?: IoTDataPlaneClientConfig['credentials'];
}

/** The region in an IoT endpoint host name (`…iot.<region>.amazonaws.com[.cn]`), if there is one. */
function regionOf(endpoint: string): string | undefined {
  return /\.iot\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?(:\d+)?(\/|$)/.exec(endpoint)?.[1];
}

/** `downlink.shadow.aws` → source options; the endpoint falls back to the SDK's own resolution. */
export function awsIotShadowOptions(
  config: DownlinkConfig,
  onCap: (cap: string, n: number) => void,
  env: NodeJS.ProcessEnv = process.env,
): AwsIotShadowOptions {
  const aws = config.shadow.aws;
  const endpoint = aws.endpoint
    ? /^[a-z][a-z0-9+.-]*:\/\//i.test(aws.endpoint)
      ? aws.endpoint
      : `https://${aws.endpoint}`
    : undefined;
  const configured = endpoint ?? env.AWS_ENDPOINT_URL_IOT_DATA_PLANE ?? '';
  return {
    name: config.shadow.name,
    endpoint,
    region: aws.region || regionOf(configured) || env.AWS_REGION || env.AWS_DEFAULT_REGION,
    maxRequestsPerSecondPerThing: aws.maxRequestsPerSecondPerThing,
    timeoutMs: aws.timeoutMs,
    maxAttempts: aws.maxAttempts,
    maxThings: config.cache.maxEntries,
    onCap,
  };
}

/** An SDK failure as a `ApiError` (the SDK names modelled errors after their `x-amzn-ErrorType`). */
function shadowError(err: unknown, clientToken?: string): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'AbortError' || e.name === 'TimeoutError')
    return new ApiError(504, 'RequestTimeout', 'The shadow request timed out', clientToken);
  const status = e.$metadata?.httpStatusCode ?? 502;
  return new ApiError(status, e.name ?? 'Error', e.message ?? String(err), clientToken);
}

function parsePayload(payload: Uint8Array | undefined): unknown {
  if (!payload || payload.length === 0) return {};
  try {
    return JSON.parse(Buffer.from(payload.buffer, payload.byteOffset, payload.length).toString('utf8'));
  } catch {
    throw new ApiError(502, 'InvalidShadowDocument', 'The shadow service answered with invalid JSON');
  }
}

export class AwsIotShadowSource implements ShadowSource {
  readonly kind = 'aws-iot';
  private readonly client: IoTDataPlaneClient;
  private readonly limiter: KeyedRateLimiter;
  /** Requests refused here because a thing was over its rate. */
  throttledLocally = 0;

  constructor(private readonly opts: AwsIotShadowOptions) {
    this.client = new IoTDataPlaneClient({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.region ? { region: opts.region } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts,
    });
    this.limiter = new KeyedRateLimiter(opts.maxRequestsPerSecondPerThing, opts.maxThings, (n) =>
      opts.onCap('downlink_rate_limiter_things', n),
    );
  }

  private admit(thing: string, clientToken?: string): void {
    if (this.limiter.take(thing)) return;
    this.throttledLocally++;
    this.opts.onCap('downlink_shadow_rate', 1);
    throw new ApiError(
      429,
      'ThrottlingException',
      `Over ${this.opts.maxRequestsPerSecondPerThing} shadow requests per second for ${thing}`,
      clientToken,
    );
  }

  private signal(): AbortSignal {
    return AbortSignal.timeout(this.opts.timeoutMs);
  }

  async get(thing: string): Promise<ShadowState | undefined> {
    this.admit(thing);
    try {
      const out = await this.client.send(
        new GetThingShadowCommand({ thingName: thing, shadowName: this.opts.name }),
        { abortSignal: this.signal() },
      );
      return shadowFromAnswer(parsePayload(out.payload));
    } catch (err) {
      const e = shadowError(err);
      if (e.status === 404) return undefined;
      throw e;
    }
  }

  async update(thing: string, update: ShadowUpdate): Promise<UpdateAnswer> {
    this.admit(thing, update.clientToken);
    try {
      const out = await this.client.send(
        new UpdateThingShadowCommand({
          thingName: thing,
          shadowName: this.opts.name,
          payload: Buffer.from(JSON.stringify(update)),
        }),
        { abortSignal: this.signal() },
      );
      const body = parsePayload(out.payload);
      if (!isJsonObject(body) || typeof body.version !== 'number')
        throw new ApiError(502, 'InvalidShadowDocument', 'The update answer has no version');
      return body as unknown as UpdateAnswer;
    } catch (err) {
      throw shadowError(err, update.clientToken);
    }
  }

  async delete(thing: string): Promise<{ version: number; timestamp: number }> {
    this.admit(thing);
    try {
      const out = await this.client.send(
        new DeleteThingShadowCommand({ thingName: thing, shadowName: this.opts.name }),
        { abortSignal: this.signal() },
      );
      const body = parsePayload(out.payload);
      const b = isJsonObject(body) ? body : {};
      return {
        version: typeof b.version === 'number' ? b.version : 0,
        timestamp: typeof b.timestamp === 'number' ? b.timestamp : 0,
      };
    } catch (err) {
      throw shadowError(err);
    }
  }

  /** AWS does not tell this gateway about changes: the cache's TTL bounds how stale a delta can be. */
  onChange(): void {}

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
