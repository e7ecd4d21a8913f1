/**
 * A wire-compatible stand-in for the two AWS IoT Core control-plane calls the certificate mode makes, driven
 * by the real SDK client (`@aws-sdk/client-iot`): `DescribeCertificate` (GET /certificates/{certificateId})
 * and `ListThingPrincipals` (GET /things/{thingName}/principals, paged with nextToken), with every request's
 * SigV4 signature checked (service `iot`) by `src/ops/sigv4.ts`, not the SDK's signer. Tests register
 * certificates (id = SHA-256 of the DER), attach them to things, change their status, and count calls.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifySigV4 } from '../../src/ops/sigv4.js';
import { TEST_CREDENTIAL } from './iot-data-plane-server.js';

export type CertificateStatusName = 'ACTIVE' | 'INACTIVE' | 'REVOKED' | 'PENDING_TRANSFER';

const ACCOUNT = '123456789012';
const PAGE = 2;

export class IotControlPlaneServer {
  readonly calls = { describeCertificate: 0, listThingPrincipals: 0, rejectedSignatures: 0 };
  /** Answer every request with this HTTP status (a failing control plane), until cleared. */
  failWith: number | undefined;
  private readonly certificates = new Map<string, CertificateStatusName>();
  private readonly things = new Map<string, string[]>();

  private constructor(
    private readonly server: http.Server,
    readonly region: string,
  ) {}

  static async start(region = 'eu-west-1'): Promise<IotControlPlaneServer> {
    const server = http.createServer();
    const s = new IotControlPlaneServer(server, region);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => s.handle(req, res, Buffer.concat(chunks)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  arn(certificateId: string): string {
    return `arn:aws:iot:${this.region}:${ACCOUNT}:cert/${certificateId}`;
  }

  register(certificateId: string, status: CertificateStatusName = 'ACTIVE'): void {
    this.certificates.set(certificateId, status);
  }

  setStatus(certificateId: string, status: CertificateStatusName): void {
    this.certificates.set(certificateId, status);
  }

  /** Attaches the certificate to the thing (creating the thing), with other principals before it. */
  attach(certificateId: string, thing: string, others = 0): void {
    const list = this.things.get(thing) ?? [];
    for (let i = 0; i < others; i++)
      list.push(`arn:aws:iot:${this.region}:${ACCOUNT}:cert/${'0'.repeat(63)}${i}`);
    list.push(this.arn(certificateId));
    this.things.set(thing, list);
  }

  detach(certificateId: string, thing: string): void {
    this.things.set(
      thing,
      (this.things.get(thing) ?? []).filter((p) => p !== this.arn(certificateId)),
    );
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    const url = req.url ?? '/';
    const v = verifySigV4(
      { method: req.method ?? 'GET', url, headers: req.headers, body },
      {
        credentials: new Map([[TEST_CREDENTIAL.accessKeyId, TEST_CREDENTIAL]]),
        region: this.region,
        service: 'iot',
      },
    );
    if (!v.ok) {
      this.calls.rejectedSignatures++;
      return this.error(res, v.status, v.code, v.message);
    }
    if (this.failWith !== undefined)
      return this.error(res, this.failWith, 'InternalFailureException', 'injected');
    const [path, query = ''] = url.split('?');
    const params = new URLSearchParams(query);
    let m = /^\/certificates\/([^/]+)$/.exec(path);
    if (m && req.method === 'GET') {
      this.calls.describeCertificate++;
      const id = decodeURIComponent(m[1]);
      const status = this.certificates.get(id);
      if (!status) return this.error(res, 404, 'ResourceNotFoundException', `certificate ${id} not found`);
      return this.json(res, {
        certificateDescription: {
          certificateArn: this.arn(id),
          certificateId: id,
          status,
          ownedBy: ACCOUNT,
          creationDate: 1764000000,
        },
      });
    }
    m = /^\/things\/([^/]+)\/principals$/.exec(path);
    if (m && req.method === 'GET') {
      this.calls.listThingPrincipals++;
      const thing = decodeURIComponent(m[1]);
      const list = this.things.get(thing);
      if (!list) return this.error(res, 404, 'ResourceNotFoundException', `thing ${thing} not found`);
      const from = Number(params.get('nextToken') ?? '0');
      const page = list.slice(from, from + PAGE);
      return this.json(res, {
        principals: page,
        ...(from + PAGE < list.length ? { nextToken: String(from + PAGE) } : {}),
      });
    }
    this.error(res, 404, 'UnknownOperationException', `no route for ${req.method} ${path}`);
  }

  private json(res: ServerResponse, doc: unknown): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(doc));
  }

  private error(res: ServerResponse, status: number, code: string, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-ErrorType': code });
    res.end(JSON.stringify({ message }));
  }
}
