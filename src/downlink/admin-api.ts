/**
 * The local admin API on the HTTP side port, in the IoT Data Plane's own wire shape so the AWS CLI and SDKs
 * work against a gateway (`aws iot-data update-thing-shadow --endpoint-url http://localhost:8080 …`):
 *
 *   GET | POST | DELETE /things/{thing}/shadow?name=<downlink.shadow.name>   (Get/Update/DeleteThingShadow)
 *   POST /things/{thing}/commands   {"data": <any JSON>, "ttlSeconds": 3600}   → 201 the queued command
 *   GET  /things/{thing}/commands[/{id}]                                       → commands and their state
 *
 * Errors carry `x-amzn-ErrorType` and a JSON `message`, as the AWS SDKs expect.
 */
import { ApiError } from '../state/api-error.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminAuth } from '../ops/admin-auth.js';
import type { HttpSidePort } from '../ops/http.js';
import type { Logger } from '../ops/logger.js';
import { type Command } from '../state/command-store.js';
import type { Downlinks } from './downlinks.js';
import { isJsonObject, parseShadowUpdate, shadowAnswer, unixSeconds } from './shadow-document.js';

export interface AdminApiOptions {
  /**
   * Whether a device in the registry has this thing (undefined when the registry cannot say). Writes for a
   * thing no device uses are accepted (the device may be added later) with a warning in the answer.
   */
  thingInUse?: (thing: string) => boolean | undefined;
  shadowName: string;
  maxBodyBytes: number;
  commands: { defaultTtlSeconds: number; maxTtlSeconds: number; maxCommandBytes: number };
}

const THING = /^[a-zA-Z0-9:_-]{1,128}$/;

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  errorType?: string,
  warning?: string,
): void {
  const data = JSON.stringify(warning === undefined ? body : { ...(body as object), warning });
  const headers: Record<string, string | number> = {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  // RFC 7234 §5.5 warn-code 299 (miscellaneous persistent warning); the text is quoted, so no quotes in it.
  if (warning) headers.warning = `299 cellgate "${warning.replace(/["\\]/g, "'")}"`;
  res.writeHead(status, headers);
  res.end(data);
}

function sendError(
  res: ServerResponse,
  e: { status: number; code: string; message: string; clientToken?: string },
) {
  send(
    res,
    e.status,
    { code: e.status, message: e.message, ...(e.clientToken ? { clientToken: e.clientToken } : {}) },
    e.code,
  );
}

/** Reads the body, refusing more than `max` bytes. */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > max)
      return reject(new ApiError(413, 'RequestEntityTooLargeException', `Body over ${max} bytes`));
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        // Stop collecting but keep the connection, so the 413 answer can be sent.
        req.removeAllListeners('data');
        req.resume();
        reject(new ApiError(413, 'RequestEntityTooLargeException', `Body over ${max} bytes`));
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function commandView(c: Command): Record<string, unknown> {
  let data: unknown;
  try {
    data = JSON.parse(c.data);
  } catch {
    data = c.data;
  }
  const view: Record<string, unknown> = {
    id: c.id,
    state: c.state,
    data,
    enqueuedAt: new Date(c.enqueuedAt).toISOString(),
    expiresAt: new Date(c.expiresAt).toISOString(),
    attempts: c.attempts,
  };
  if (c.sentAt !== undefined) view.sentAt = new Date(c.sentAt).toISOString();
  if (c.finishedAt !== undefined)
    view[c.state === 'delivered' ? 'deliveredAt' : 'expiredAt'] = new Date(c.finishedAt).toISOString();
  return view;
}

export class AdminApi {
  constructor(
    private readonly downlinks: Downlinks,
    private readonly auth: AdminAuth,
    private readonly opts: AdminApiOptions,
    private readonly log: Logger,
  ) {}

  mount(http: HttpSidePort): void {
    http.route('/things/', (req, res, url) => this.handle(req, res, url));
  }

  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    try {
      const body = await readBody(req, this.opts.maxBodyBytes);
      const allowed = this.auth.check(req, body);
      if (!allowed.ok) return sendError(res, allowed);
      const parts = url.pathname.split('/');
      // ['', 'things', thing, resource, id?]
      if (parts.length < 4 || parts.length > 5)
        throw new ApiError(404, 'ResourceNotFoundException', 'Not found');
      let thing: string;
      try {
        thing = decodeURIComponent(parts[2]);
      } catch {
        thing = '';
      }
      if (!THING.test(thing)) throw new ApiError(400, 'InvalidRequestException', 'Invalid thing name');
      const method = req.method ?? 'GET';
      if (parts[3] === 'shadow' && parts.length === 4)
        return await this.shadow(res, method, thing, url, body);
      if (parts[3] === 'commands') return await this.commands(res, method, thing, parts[4], body);
      throw new ApiError(404, 'ResourceNotFoundException', 'Not found');
    } catch (err) {
      if (err instanceof ApiError) return sendError(res, err);
      this.log.error({ err }, 'admin api request failed');
      sendError(res, new ApiError(500, 'InternalFailureException', 'Internal failure'));
    }
  }

  private async shadow(
    res: ServerResponse,
    method: string,
    thing: string,
    url: URL,
    body: Buffer,
  ): Promise<void> {
    const name = url.searchParams.get('name');
    if (name !== this.opts.shadowName)
      throw new ApiError(
        404,
        'ResourceNotFoundException',
        `This gateway keeps only the named shadow '${this.opts.shadowName}' (?name=${this.opts.shadowName})`,
      );
    if (method === 'GET') {
      const state = await this.downlinks.getShadow(thing);
      if (!state)
        throw new ApiError(
          404,
          'ResourceNotFoundException',
          `No shadow exists with name: '${thing}~${name}'`,
        );
      return send(res, 200, shadowAnswer(state, unixSeconds()));
    }
    if (method === 'POST')
      return send(
        res,
        200,
        await this.downlinks.updateShadow(thing, parseShadowUpdate(body)),
        undefined,
        this.unusedThingWarning(thing),
      );
    if (method === 'DELETE') return send(res, 200, await this.downlinks.deleteShadow(thing));
    throw new ApiError(405, 'MethodNotAllowedException', `${method} is not allowed on a shadow`);
  }

  private async commands(
    res: ServerResponse,
    method: string,
    thing: string,
    id: string | undefined,
    body: Buffer,
  ): Promise<void> {
    if (id !== undefined) {
      if (method !== 'GET')
        throw new ApiError(405, 'MethodNotAllowedException', `${method} is not allowed here`);
      const c = (await this.downlinks.listCommands(thing)).find((x) => String(x.id) === id);
      if (!c) throw new ApiError(404, 'ResourceNotFoundException', `No command ${id} for ${thing}`);
      return send(res, 200, commandView(c));
    }
    if (method === 'GET') {
      const list = await this.downlinks.listCommands(thing);
      return send(res, 200, { thing, commands: list.map(commandView) });
    }
    if (method !== 'POST')
      throw new ApiError(405, 'MethodNotAllowedException', `${method} is not allowed here`);
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch {
      throw new ApiError(400, 'InvalidRequestException', 'Invalid JSON');
    }
    if (!isJsonObject(doc) || !('data' in doc))
      throw new ApiError(400, 'InvalidRequestException', 'Expected {"data": …, "ttlSeconds": …}');
    for (const k of Object.keys(doc))
      if (k !== 'data' && k !== 'ttlSeconds')
        throw new ApiError(400, 'InvalidRequestException', `Unexpected field ${k}`);
    const c = this.opts.commands;
    const ttl = doc.ttlSeconds ?? Math.min(c.defaultTtlSeconds, c.maxTtlSeconds);
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > c.maxTtlSeconds)
      throw new ApiError(
        400,
        'InvalidRequestException',
        `ttlSeconds must be an integer from 1 to ${c.maxTtlSeconds}`,
      );
    const data = JSON.stringify(doc.data);
    if (Buffer.byteLength(data) > c.maxCommandBytes)
      throw new ApiError(
        413,
        'RequestEntityTooLargeException',
        `Command data over ${c.maxCommandBytes} bytes (downlink.commands.maxCommandBytes)`,
      );
    const command = await this.downlinks.enqueue(thing, data, ttl * 1000);
    send(res, 201, commandView(command), undefined, this.unusedThingWarning(thing));
  }

  /** The warning for a write to a thing no device in the registry uses (a typo, or a device not added yet). */
  private unusedThingWarning(thing: string): string | undefined {
    if (this.opts.thingInUse?.(thing) !== false) return undefined;
    return (
      `no device in the registry has thing ${thing}: the downlink waits until a device with ` +
      `thing: ${thing} (or id: ${thing} without a thing) is in the device file`
    );
  }
}
