/**
 * The HTTP side port: `/healthz` (the process is alive), `/readyz` (ready for traffic: listeners up, not
 * draining, publisher accepting, the shared state store reached) and `/metrics` (Prometheus). Other parts add routes (the admin API).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './logger.js';
import type { MetricsRegistry } from './metrics.js';

export type HttpHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export interface Readiness {
  /** Reasons the gateway is not ready; empty when it is. */
  notReady(): string[];
  /** More of what `/readyz` reports (e.g. the shared state store), merged into its body. */
  details?(): Record<string, unknown>;
}

export class HttpSidePort {
  private readonly server: Server;
  private readonly routes: { prefix: string; handler: HttpHandler }[] = [];

  constructor(
    private readonly metrics: MetricsRegistry,
    private readonly readiness: Readiness,
    private readonly log: Logger,
  ) {
    this.server = createServer((req, res) => void this.dispatch(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  /** Routes requests whose path starts with `prefix` to a handler. */
  route(prefix: string, handler: HttpHandler): void {
    this.routes.push({ prefix, handler });
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      switch (url.pathname) {
        case '/healthz':
          return json(res, 200, { status: 'ok' });
        case '/readyz': {
          const reasons = this.readiness.notReady();
          return json(res, reasons.length ? 503 : 200, {
            ready: reasons.length === 0,
            reasons,
            ...this.readiness.details?.(),
          });
        }
        case '/metrics': {
          const body = await this.metrics.metrics();
          res.writeHead(200, { 'content-type': this.metrics.contentType });
          res.end(body);
          return;
        }
      }
      for (const r of this.routes) {
        if (url.pathname.startsWith(r.prefix)) return await r.handler(req, res, url);
      }
      json(res, 404, { message: 'not found' });
    } catch (err) {
      this.log.error({ err }, 'http request failed');
      if (!res.headersSent) json(res, 500, { message: 'internal error' });
      else res.destroy();
    }
  }

  listen(bind: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, bind, () => {
        this.server.off('error', reject);
        const a = this.server.address();
        resolve(typeof a === 'object' && a ? a.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}
