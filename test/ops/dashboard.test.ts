/**
 * The Grafana dashboard (helm/cellgate/dashboards/cellgate.json): every metric its queries use exists on a
 * running gateway with every layer on (AWS IoT publisher, outbox), every gateway metric has a panel, and the
 * layout is sound (unique ids, panels inside the 24-column grid, none overlapping).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../support/child-gateway.js';
import { startTestGateway, type TestGateway } from '../support/gateway.js';
import { freeUdpPorts } from '../support/raw-peers.js';
import { IotDataPlaneServer, TEST_CREDENTIAL } from '../support/iot-data-plane-server.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: { expr: string }[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'helm/cellgate/dashboards/cellgate.json'), 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};

/** Metrics the dashboard leaves out on purpose (shown through a related metric). */
const NOT_ON_DASHBOARD = new Set([
  'cellgate_publish_queue_bytes', // queue depth is shown
  'cellgate_publish_breaker_opened_total', // breaker state is shown
  'cellgate_outbox_segments', // bytes on disk are shown
  'cellgate_outbox_paused', // delivery failures and backlog are shown
  'cellgate_outbox_delivery_failures_total',
  'cellgate_outbox_commits_total', // commit latency is shown
]);

describe('Grafana dashboard', () => {
  let server: IotDataPlaneServer;
  let gw: TestGateway;
  let exposed: Map<string, string>;

  beforeAll(async () => {
    server = await IotDataPlaneServer.start();
    const [udpPort, radiusPort] = await freeUdpPorts(2);
    process.env.AWS_ACCESS_KEY_ID = TEST_CREDENTIAL.accessKeyId;
    process.env.AWS_SECRET_ACCESS_KEY = TEST_CREDENTIAL.secretAccessKey;
    gw = await startTestGateway({
      // A device with a js codec, so that the codec sandbox (and its metrics) exists.
      devices: [{ id: 'js-1', codec: { name: 'js', options: { script: 'files/f.js' } } }],
      files: { 'f.js': 'function decodeUplink(input) { return { data: { n: input.bytes.length } }; }' },
      configuredPublisher: true,
      config: {
        // Raw UDP and RADIUS accounting on, so that their metrics exist.
        udp: { port: udpPort },
        radius: { bind: '127.0.0.1', port: radiusPort },
        publisher: {
          type: 'aws-iot',
          endpoint: server.url,
          region: 'us-east-1',
          ack: 'after-outbox',
          outbox: { dir: 'outbox' },
          path: undefined, // the test default is a file sink
        },
      },
    });
    const text = await (await fetch(`http://127.0.0.1:${gw.ports.http}/metrics`)).text();
    exposed = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
  });
  afterAll(async () => {
    await gw.stop();
    await server.close();
  });

  const queries = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  );

  it('queries only metrics the gateway exposes', () => {
    expect(queries.length).toBeGreaterThan(30);
    const names = new Set<string>();
    for (const [name, type] of exposed) {
      names.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(name + s);
    }
    for (const q of queries) {
      const used = q.expr.match(/\bcellgate_[a-z0-9_]+/g) ?? [];
      expect(used.length, q.panel).toBeGreaterThan(0);
      for (const m of used) expect(names.has(m), `${q.panel}: ${m}`).toBe(true);
      expect(q.expr, q.panel).toMatch(/job=~"\$job", instance=~"\$instance"/);
    }
  });

  it('has a panel for every metric of the gateway', () => {
    const used = new Set(queries.flatMap((q) => q.expr.match(/\bcellgate_[a-z0-9_]+/g) ?? []));
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const usedBase = new Set([...used].map(base));
    const missing = [...exposed.keys()].filter(
      (n) =>
        !n.startsWith('cellgate_process_') &&
        !n.startsWith('cellgate_nodejs_') &&
        !usedBase.has(n) &&
        !NOT_ON_DASHBOARD.has(n),
    );
    expect(missing).toEqual([]);
    for (const n of NOT_ON_DASHBOARD) expect(exposed.has(n), `${n} still exists`).toBe(true);
  });

  it('lays out panels on the grid without overlaps, with unique ids and a data source variable', () => {
    expect(dashboard.uid).toBe('cellgate');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job', 'instance']);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const g = p.gridPos;
      expect(g.x >= 0 && g.w > 0 && g.x + g.w <= 24, p.title).toBe(true);
      for (let x = g.x; x < g.x + g.w; x++) {
        for (let y = g.y; y < g.y + g.h; y++) {
          const cell = `${x},${y}`;
          expect(cells.has(cell), `${p.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
  });
});
