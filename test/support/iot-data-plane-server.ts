/**
 * A wire-compatible AWS IoT Data Plane HTTP server for the tests and benchmarks, driven by the real SDK
 * client: every request's SigV4 signature is checked (with `src/ops/sigv4.ts`, not the SDK's signer); `Publish`
 * records topic, payload, QoS, retain, content type, user properties and the other MQTT 5 fields; the device
 * shadow calls keep real shadow documents (`shadow-store.ts`). Faults are injected on demand: error answers
 * (429, 5xx, any code), answers that never come, dropped connections and delays.
 *
 * In-process: `await IotDataPlaneServer.start()`. As a separate process: `iot-data-plane-server-main.ts`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { ShadowStore, type ShadowAnswer } from './shadow-store.js';
import { verifySigV4, type Credential } from '../../src/ops/sigv4.js';

export const TEST_CREDENTIAL: Credential = {
  accessKeyId: 'AKIDCELLGATETEST',
  secretAccessKey: 'cellgate-test-secret-key/with+odd=chars',
};

export const MAX_PUBLISH_BYTES = 128 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;

/** Reads `x-amz-mqtt5-user-properties` (base64 of a JSON list of one-key objects) into pairs. */
export function parseUserProperties(value: string): [string, string][] {
  const list: unknown = JSON.parse(Buffer.from(value, 'base64').toString('utf8'));
  if (!Array.isArray(list)) throw new Error('user properties are not a JSON list');
  const out: [string, string][] = [];
  for (const item of list) {
    if (item === null || typeof item !== 'object' || Array.isArray(item))
      throw new Error('a user property is not a JSON object');
    for (const [k, v] of Object.entries(item as Record<string, unknown>)) {
      if (typeof v !== 'string') throw new Error(`user property ${k} is not a string`);
      out.push([k, v]);
    }
  }
  return out;
}

export interface RecordedPublish {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: boolean;
  contentType?: string;
  responseTopic?: string;
  messageExpiry?: number;
  payloadFormatIndicator?: string;
  correlationData?: string;
  userProperties: [string, string][];
  accessKeyId: string;
  receivedAt: number;
}

/** What to do with a request instead of answering it normally. */
export type Fault =
  | { kind: 'error'; status: number; code?: string; message?: string }
  | { kind: 'hang' }
  | { kind: 'drop' }
  | { kind: 'delay'; ms: number };

export type Route = 'publish' | 'shadow' | 'any';

export interface ServerOptions {
  port?: number;
  host?: string;
  region?: string;
  credentials?: Credential[];
  /** Keep every publish in `publishes` (off for benchmarks: only counted). */
  record?: boolean;
  /** Check signatures (on unless a benchmark measures the server without it). */
  verify?: boolean;
  /** How far this server's clock is ahead of the machine's (to test clock-skew correction). */
  clockOffsetMs?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: Buffer; cert: Buffer };
}

export interface ServerStats {
  requests: number;
  publishes: number;
  rejectedSignatures: number;
  faults: number;
}

interface FaultRule {
  fault: Fault;
  remaining: number;
  route: Route;
}

export const FAULTS = {
  throttle: { kind: 'error', status: 429, code: 'ThrottlingException', message: 'Rate exceeded' } as Fault,
  unavailable: {
    kind: 'error',
    status: 503,
    code: 'ServiceUnavailableException',
    message: 'Service unavailable',
  } as Fault,
  internal: {
    kind: 'error',
    status: 500,
    code: 'InternalFailureException',
    message: 'Internal failure',
  } as Fault,
  hang: { kind: 'hang' } as Fault,
  drop: { kind: 'drop' } as Fault,
};

export class IotDataPlaneServer {
  readonly publishes: RecordedPublish[] = [];
  readonly shadows = new ShadowStore();
  readonly stats: ServerStats = { requests: 0, publishes: 0, rejectedSignatures: 0, faults: 0 };
  private readonly rules: FaultRule[] = [];
  private readonly hung = new Set<ServerResponse>();
  private readonly waiters: { count: number; resolve: () => void }[] = [];
  private readonly credentials: Map<string, Credential>;
  private readonly region: string;
  private readonly record: boolean;
  private readonly verify: boolean;
  private readonly scheme: string;
  /** How far this server's clock is ahead of the machine's; may be changed while running. */
  clockOffsetMs: number;
  /** Requests held by a `delay` fault right now (received, not yet answered). */
  delayed = 0;

  private constructor(
    private readonly server: http.Server,
    opts: ServerOptions,
  ) {
    this.credentials = new Map((opts.credentials ?? [TEST_CREDENTIAL]).map((c) => [c.accessKeyId, c]));
    this.region = opts.region ?? 'us-east-1';
    this.record = opts.record ?? true;
    this.verify = opts.verify ?? true;
    this.clockOffsetMs = opts.clockOffsetMs ?? 0;
    this.scheme = opts.tls ? 'https' : 'http';
  }

  static async start(opts: ServerOptions = {}): Promise<IotDataPlaneServer> {
    const server = opts.tls
      ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert })
      : http.createServer();
    server.keepAliveTimeout = 60_000;
    server.headersTimeout = 65_000;
    const s = new IotDataPlaneServer(server, opts);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => s.receive(req, res));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
    });
    return s;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** `http://127.0.0.1:<port>` (or https): the SDK's `endpoint`. */
  get url(): string {
    return `${this.scheme}://127.0.0.1:${this.port}`;
  }

  /** Applies `fault` to the next `count` requests on `route` (Infinity: until `clearFaults`). */
  inject(fault: Fault, count = 1, route: Route = 'any'): void {
    this.rules.push({ fault, remaining: count, route });
  }

  clearFaults(): void {
    this.rules.length = 0;
    for (const res of this.hung) res.destroy();
    this.hung.clear();
  }

  /** Resolves once `count` publishes have been accepted in total. */
  waitForPublishes(count: number, timeoutMs = 10_000): Promise<void> {
    if (this.stats.publishes >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`only ${this.stats.publishes} of ${count} publishes arrived in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  async close(): Promise<void> {
    this.clearFaults();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private receive(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY_BYTES) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY_BYTES)
        return this.error(res, 413, 'RequestEntityTooLargeException', 'Request is too large');
      this.handle(req, res, chunks.length === 1 ? chunks[0] : Buffer.concat(chunks));
    });
  }

  private takeFault(route: Route): Fault | undefined {
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i];
      if (r.route !== 'any' && r.route !== route) continue;
      if (--r.remaining <= 0) this.rules.splice(i, 1);
      return r.fault;
    }
    return undefined;
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    this.stats.requests++;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const params = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    let accessKeyId = '';
    if (this.verify) {
      const v = verifySigV4(
        { method: req.method ?? 'GET', url, headers: req.headers, body },
        {
          credentials: this.credentials,
          region: this.region,
          service: 'iotdata',
          now: new Date(Date.now() + this.clockOffsetMs),
        },
      );
      if (!v.ok) {
        this.stats.rejectedSignatures++;
        return this.error(res, v.status, v.code, v.message);
      }
      accessKeyId = v.accessKeyId;
    }
    const route: Route = path.startsWith('/topics/') ? 'publish' : 'shadow';
    const fault = this.rules.length > 0 ? this.takeFault(route) : undefined;
    if (fault) {
      this.stats.faults++;
      switch (fault.kind) {
        case 'error':
          return this.error(res, fault.status, fault.code ?? '', fault.message ?? 'injected failure');
        case 'hang':
          this.hung.add(res);
          res.on('close', () => this.hung.delete(res));
          return;
        case 'drop':
          req.socket.destroy();
          return;
        case 'delay':
          this.delayed++;
          setTimeout(() => {
            this.delayed--;
            this.route(req.method ?? 'GET', path, params, req, res, body, accessKeyId);
          }, fault.ms);
          return;
      }
    }
    this.route(req.method ?? 'GET', path, params, req, res, body, accessKeyId);
  }

  private route(
    method: string,
    path: string,
    params: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer,
    accessKeyId: string,
  ): void {
    if (path.startsWith('/topics/')) {
      if (method !== 'POST') return this.error(res, 405, 'MethodNotAllowedException', 'Method not allowed');
      return this.publish(path.slice('/topics/'.length), params, req, res, body, accessKeyId);
    }
    const list = /^\/api\/things\/shadow\/ListNamedShadowsForThing\/([^/]+)$/.exec(path);
    if (list) {
      if (method !== 'GET') return this.error(res, 405, 'MethodNotAllowedException', 'Method not allowed');
      const pageSize = params.get('pageSize');
      return this.answer(
        res,
        this.shadows.listNamed(
          decodeURIComponent(list[1]),
          pageSize === null ? undefined : Number(pageSize),
          params.get('nextToken') ?? undefined,
        ),
      );
    }
    const shadow = /^\/things\/([^/]+)\/shadow$/.exec(path);
    if (shadow) {
      const thing = decodeURIComponent(shadow[1]);
      const name = params.get('name') ?? '';
      if (method === 'GET') return this.answer(res, this.shadows.get(thing, name));
      if (method === 'POST') return this.answer(res, this.shadows.update(thing, name, body));
      if (method === 'DELETE') return this.answer(res, this.shadows.delete(thing, name));
      return this.error(res, 405, 'MethodNotAllowedException', 'Method not allowed');
    }
    this.error(res, 404, 'UnknownOperationException', `no operation at ${method} ${path}`);
  }

  private publish(
    rawTopic: string,
    params: URLSearchParams,
    req: IncomingMessage,
    res: ServerResponse,
    payload: Buffer,
    accessKeyId: string,
  ): void {
    let topic: string;
    try {
      topic = decodeURIComponent(rawTopic);
    } catch {
      return this.error(res, 400, 'InvalidRequestException', 'topic is not valid percent-encoding');
    }
    if (topic === '' || /[+#]/.test(topic) || topic.includes('\u0000'))
      return this.error(res, 400, 'InvalidRequestException', 'topic is empty or holds a wildcard');
    const qosText = params.get('qos') ?? '0';
    if (qosText !== '0' && qosText !== '1')
      return this.error(res, 400, 'InvalidRequestException', 'qos must be 0 or 1');
    if (payload.length > MAX_PUBLISH_BYTES)
      return this.error(
        res,
        413,
        'RequestEntityTooLargeException',
        'The payload exceeds the maximum size allowed',
      );
    let userProperties: [string, string][] = [];
    const up = req.headers['x-amz-mqtt5-user-properties'];
    if (typeof up === 'string') {
      try {
        userProperties = parseUserProperties(up);
      } catch (e) {
        return this.error(
          res,
          400,
          'InvalidRequestException',
          `bad x-amz-mqtt5-user-properties: ${(e as Error).message}`,
        );
      }
    }
    this.stats.publishes++;
    if (this.record) {
      const expiry = params.get('messageExpiry');
      this.publishes.push({
        topic,
        payload,
        qos: Number(qosText),
        retain: params.get('retain') === 'true',
        contentType: params.get('contentType') ?? undefined,
        responseTopic: params.get('responseTopic') ?? undefined,
        messageExpiry: expiry === null ? undefined : Number(expiry),
        payloadFormatIndicator: req.headers['x-amz-mqtt5-payload-format-indicator'] as string | undefined,
        correlationData: req.headers['x-amz-mqtt5-correlation-data'] as string | undefined,
        userProperties,
        accessKeyId,
        receivedAt: Date.now(),
      });
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
    res.end('{}');
    if (this.waiters.length > 0) {
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        if (this.stats.publishes >= this.waiters[i].count) this.waiters.splice(i, 1)[0].resolve();
      }
    }
  }

  private answer(res: ServerResponse, a: ShadowAnswer): void {
    const text = JSON.stringify(a.body);
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
    };
    if (a.code) headers['x-amzn-errortype'] = a.code;
    res.writeHead(a.status, headers);
    res.end(text);
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    const text = JSON.stringify({ message });
    const headers: Record<string, string | number> = {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      date: new Date(Date.now() + this.clockOffsetMs).toUTCString(),
    };
    if (code) headers['x-amzn-errortype'] = code;
    res.writeHead(status, headers);
    res.end(text);
  }
}
