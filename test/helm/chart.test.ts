/**
 * The Helm chart without the helm binary: values against values.schema.json (ajv, draft 7), the manifests
 * rendered by the test renderer (test/support/helm) for the default values and for a full set, each checked
 * against the Kubernetes schemas of `kubernetes-models` (types, required fields, enums; unknown fields are not
 * flagged by those schemas), and the manifests checked against each other and against the gateway: the
 * rendered config loads, ports, selectors and names line up, the shutdown deadline fits the grace period.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { z } from 'zod';
import { loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { readDeviceFile } from '../../src/devices/file-registry.js';
import { Keyring } from '../../src/state/sealing.js';
import { ROOT } from '../support/child-gateway.js';
import { parseYaml11, renderChart, ValuesError, type Manifest } from '../support/helm/chart.js';
import type { Value } from '../support/helm/go-template.js';

const CHART = join(ROOT, 'helm/cellgate');

/** Validates one manifest with its kubernetes-models class. */
async function validateManifest(m: Manifest): Promise<void> {
  const { source: _source, ...obj } = m;
  const modules: Record<string, string> = {
    v1: 'kubernetes-models/v1',
    'apps/v1': 'kubernetes-models/apps/v1',
    'autoscaling/v2': 'kubernetes-models/autoscaling/v2',
    'policy/v1': 'kubernetes-models/policy/v1',
    'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
  };
  const mod = modules[m.apiVersion];
  if (!mod) throw new Error(`${m.source}: no schema for ${m.apiVersion}`);
  const classes = (await import(mod)) as Record<string, new (o: unknown) => { validate(): void }>;
  const Kind = classes[m.kind];
  if (!Kind) throw new Error(`${m.source}: no schema for ${m.apiVersion} ${m.kind}`);
  try {
    new Kind(obj).validate();
  } catch (err) {
    throw new Error(`${m.source} (${m.kind} ${m.metadata.name}) is invalid: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** values-fleet.yaml, the example a fleet starts from. */
const FLEET = parseYaml11(readFileSync(join(CHART, 'values-fleet.yaml'), 'utf8')) as Record<string, Value>;

function find(ms: Manifest[], kind: string, name?: string): Manifest {
  const m = ms.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!m) throw new Error(`no ${kind} ${name ?? ''}`);
  return m;
}

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are checked structurally below */
type Any = any;

function pod(ms: Manifest[]): Any {
  const w = ms.find((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet') as Any;
  return w.spec.template;
}

const FULL = {
  replicaCount: 3,
  autoscaling: { enabled: false },
  state: {
    store: 'redis',
    redis: {
      url: 'rediss://redis.internal:6380',
      passwordSecret: { name: 'redis-auth', key: 'token' },
      keyPrefix: 'gw:',
    },
    encryptionKeySecret: { name: 'state-key' },
  },
  aws: { roleArn: 'arn:aws:iam::123456789012:role/cellgate', region: 'eu-west-1' },
  devices: { existingSecret: 'fleet-devices' },
  pskSecret: { name: 'fleet-keys' },
  adminSecret: { name: 'cellgate-admin', key: 'bearer' },
  dtlsCertificateSecret: { name: 'gateway-tls', trustAnchorsKey: 'ca.crt' },
  serviceMonitor: { enabled: true, labels: { release: 'prometheus' } },
  service: {
    scheme: 'internal',
    annotations: { 'service.beta.kubernetes.io/aws-load-balancer-name': 'cellgate' },
  },
  podAnnotations: { team: 'iot' },
  env: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=768' }],
  config: { log: { level: 'debug' }, coap: { piggybackWindowMs: 500 } },
};

/** The rendered cellgate.yaml, loaded by the gateway's own loader (with `env` as the pod's environment). */
function loadRendered(ms: Manifest[], env: Record<string, string> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'cellgate-chart-'));
  const file = join(dir, 'cellgate.yaml');
  writeFileSync(file, (find(ms, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml']);
  return loadConfig(file, env);
}

/** The Secret and key behind a file the container reads, through its mounts and the pod's volumes. */
function secretFile(ms: Manifest[], path: string): { secret: string; key: string } | undefined {
  const spec = pod(ms).spec;
  for (const m of spec.containers[0].volumeMounts as Any[]) {
    if (!path.startsWith(`${m.mountPath}/`)) continue;
    const rel = path.slice(m.mountPath.length + 1);
    const vol = (spec.volumes as Any[]).find((v) => v.name === m.name);
    const item = vol?.secret?.items?.find((i: Any) => i.path === rel);
    if (item) return { secret: vol.secret.secretName, key: item.key };
  }
  return undefined;
}

describe('helm chart', () => {
  it('renders the default values into valid Kubernetes objects: one replica on the memory store', async () => {
    const r = renderChart(CHART);
    expect(r.manifests.map((m) => m.kind).sort()).toEqual([
      'ConfigMap',
      'ConfigMap',
      'Deployment',
      'Secret',
      'Service',
      'Service',
      'ServiceAccount',
    ]);
    for (const m of r.manifests) await validateManifest(m);
    expect((find(r.manifests, 'Deployment') as Any).spec.replicas).toBe(1);
    expect(loadRendered(r.manifests).config.state.store).toBe('memory');
    const volumes = pod(r.manifests).spec.volumes.map((v: Any) => v.name);
    expect(volumes).not.toContain('state-key');
    expect(volumes).not.toContain('state-redis');
  });

  it('renders a full set of values (IRSA, Secrets, ServiceMonitor, no HPA) into valid Kubernetes objects', async () => {
    const r = renderChart(CHART, FULL);
    const kinds = r.manifests.map((m) => m.kind);
    expect(kinds).toContain('ServiceMonitor');
    expect(kinds).not.toContain('HorizontalPodAutoscaler');
    expect(kinds.filter((k) => k === 'Secret')).toHaveLength(0); // the device file comes from fleet-devices
    for (const m of r.manifests) await validateManifest(m);
    const p = pod(r.manifests);
    expect(find(r.manifests, 'Deployment').spec).toMatchObject({ replicas: 3 });
    expect(p.metadata.annotations.team).toBe('iot');
    const c = p.spec.containers[0];
    expect(c.env).toEqual(
      expect.arrayContaining([
        { name: 'AWS_REGION', value: 'eu-west-1' },
        { name: 'NODE_OPTIONS', value: '--max-old-space-size=768' },
      ]),
    );
    const volumes = Object.fromEntries(p.spec.volumes.map((v: Any) => [v.name, v]));
    expect(volumes.devices.secret.secretName).toBe('fleet-devices');
    expect(volumes.keys.secret.secretName).toBe('fleet-keys');
    expect(c.volumeMounts).toEqual(
      expect.arrayContaining([{ name: 'keys', mountPath: '/etc/cellgate/keys', readOnly: true }]),
    );
    expect(volumes.admin.secret).toEqual({
      secretName: 'cellgate-admin',
      items: [{ key: 'bearer', path: 'token' }],
    });
    const cm = (find(r.manifests, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml'] as string;
    expect(cm).toContain('tokenFile: /etc/cellgate/admin/token');
    // The DTLS certificate and key (and trust anchors) from a Secret, as dtls.certificate and dtls.trustAnchors.
    expect(volumes['dtls-certificate'].secret).toEqual({
      secretName: 'gateway-tls',
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
        { key: 'ca.crt', path: 'ca.pem' },
      ],
    });
    expect(c.volumeMounts).toContainEqual({
      name: 'dtls-certificate',
      mountPath: '/etc/cellgate/dtls',
      readOnly: true,
    });
    expect(parse(cm).dtls).toMatchObject({
      certificate: { certFile: '/etc/cellgate/dtls/tls.crt', keyFile: '/etc/cellgate/dtls/tls.key' },
      trustAnchors: '/etc/cellgate/dtls/ca.pem',
    });
    expect(c.volumeMounts).toContainEqual({
      name: 'admin',
      mountPath: '/etc/cellgate/admin',
      readOnly: true,
    });
    const sa = find(r.manifests, 'ServiceAccount');
    expect(sa.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': FULL.aws.roleArn });
    expect(p.spec.serviceAccountName).toBe(sa.metadata.name);
    const svc = find(r.manifests, 'Service', 'gw-cellgate');
    expect(svc.metadata.annotations).toMatchObject({
      'service.beta.kubernetes.io/aws-load-balancer-scheme': 'internal',
      'service.beta.kubernetes.io/aws-load-balancer-name': 'cellgate',
    });
    const monitor = find(r.manifests, 'ServiceMonitor') as Any;
    expect(monitor.metadata.labels.release).toBe('prometheus');
  });

  it('exposes UDP through an NLB with IP targets, health-checked over HTTP on the pods’ port 8080', () => {
    const ms = renderChart(CHART).manifests;
    const svc = find(ms, 'Service', 'gw-cellgate') as Any;
    expect(svc.spec.type).toBe('LoadBalancer');
    expect(svc.spec.loadBalancerClass).toBe('service.k8s.aws/nlb');
    const a = svc.metadata.annotations;
    expect(a).toMatchObject({
      'service.beta.kubernetes.io/aws-load-balancer-type': 'external',
      'service.beta.kubernetes.io/aws-load-balancer-nlb-target-type': 'ip',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol': 'HTTP',
      'service.beta.kubernetes.io/aws-load-balancer-healthcheck-path': '/readyz',
    });
    expect(a['service.beta.kubernetes.io/aws-load-balancer-target-group-attributes']).toMatch(
      /deregistration_delay\.connection_termination\.enabled=true/,
    );
    const c = pod(ms).spec.containers[0];
    const http = c.ports.find((p: Any) => p.name === 'http');
    expect(String(http.containerPort)).toBe(
      a['service.beta.kubernetes.io/aws-load-balancer-healthcheck-port'],
    );
    expect(svc.spec.ports.map((p: Any) => [p.name, p.protocol, p.port])).toEqual([
      ['coap', 'UDP', 5683],
      ['coaps', 'UDP', 5684],
    ]);
    // Every Service port targets a container port of the same name and protocol.
    for (const s of [svc, find(ms, 'Service', 'gw-cellgate-http') as Any]) {
      for (const p of s.spec.ports) {
        const target = c.ports.find((cp: Any) => cp.name === p.targetPort);
        expect(target?.protocol, `${s.metadata.name} ${p.name}`).toBe(p.protocol);
      }
      expect(pod(ms).metadata.labels).toMatchObject(s.spec.selector);
    }
    // Only the port the gateway serves is exposed.
    const noNosec = renderChart(CHART, { config: { coap: { nosec: false } } }).manifests;
    expect((find(noNosec, 'Service', 'gw-cellgate') as Any).spec.ports.map((p: Any) => p.name)).toEqual([
      'coaps',
    ]);
    const raw = renderChart(CHART, {
      config: { udp: { port: 5685, dtlsPort: 5686 }, radius: { port: 1813 } },
    }).manifests;
    const rawSvc = find(raw, 'Service', 'gw-cellgate') as Any;
    expect(rawSvc.spec.ports.map((p: Any) => [p.name, p.protocol, p.port])).toEqual([
      ['coap', 'UDP', 5683],
      ['coaps', 'UDP', 5684],
      ['udp', 'UDP', 5685],
      ['udp-dtls', 'UDP', 5686],
      ['radius', 'UDP', 1813],
    ]);
    const rawPod = pod(raw).spec.containers[0];
    for (const p of rawSvc.spec.ports)
      expect(rawPod.ports.find((cp: Any) => cp.name === p.targetPort)?.containerPort).toBe(p.port);
    const noDtls = renderChart(CHART, { config: { dtls: { enabled: false } } }).manifests;
    expect((find(noDtls, 'Service', 'gw-cellgate') as Any).spec.ports.map((p: Any) => p.name)).toEqual([
      'coap',
    ]);
  });

  it('renders a configuration the gateway loads, with the ports, paths and deadlines the manifests expect', () => {
    for (const values of [{}, FULL]) {
      const ms = renderChart(CHART, values).manifests;
      const dir = mkdtempSync(join(tmpdir(), 'cellgate-chart-'));
      const file = join(dir, 'cellgate.yaml');
      writeFileSync(file, (find(ms, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml']);
      const { config } = loadConfig(file, {});
      expect(config.coap).toMatchObject({ bind: '0.0.0.0', port: 5683, dtlsPort: 5684 });
      expect(config.http).toMatchObject({ bind: '0.0.0.0', port: 8080 });
      expect(config.devices.file).toBe('/etc/cellgate/devices/devices.yaml');
      const p = pod(ms);
      const c = p.spec.containers[0];
      expect(c.env).toContainEqual({ name: 'CELLGATE_CONFIG', value: '/etc/cellgate/config/cellgate.yaml' });
      const mounts = Object.fromEntries(c.volumeMounts.map((m: Any) => [m.name, m.mountPath]));
      expect(mounts).toMatchObject({ config: '/etc/cellgate/config', devices: '/etc/cellgate/devices' });
      const volumeNames = p.spec.volumes.map((v: Any) => v.name);
      for (const name of Object.keys(mounts)) expect(volumeNames).toContain(name);
      // The pod outlives the gateway's own shutdown deadline, and probes use the gateway's endpoints.
      expect(p.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.shutdown.deadlineMs);
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(p.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532 });
      expect(c.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
      });
      expect(p.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
      // The root file system is read-only: what the gateway writes must sit on the writable data volume.
      const data = c.volumeMounts.find((m: Any) => m.name === 'data');
      expect(data).toMatchObject({ mountPath: '/var/lib/cellgate' });
      expect(data.readOnly).toBeUndefined();
      expect(config.publisher.outbox.dir.startsWith('/var/lib/cellgate/')).toBe(true);
      expect(config.downloads.dir.startsWith('/var/lib/cellgate/')).toBe(true);
    }
    // Values under config override the defaults but not what the chart owns.
    const ms = renderChart(CHART, { config: { coap: { port: 9999, piggybackWindowMs: 250 } } }).manifests;
    const text = (find(ms, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml'] as string;
    expect(text).toContain('port: 5683');
    expect(text).toContain('piggybackWindowMs: 250');
  });

  it('puts a device list into a Secret the registry reads, and mounts it as a folder (no subPath)', () => {
    const list = [{ id: 'meter-1' }, { id: 'tracker-17', psk: { identity: 'tracker-17', key: 'hex:0a0b' } }];
    const ms = renderChart(CHART, { devices: { list } }).manifests;
    const secret = find(ms, 'Secret', 'gw-cellgate-devices') as Any;
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-chart-'));
    writeFileSync(join(dir, 'devices.yaml'), secret.stringData['devices.yaml']);
    expect(readDeviceFile(join(dir, 'devices.yaml')).map((d) => d.id)).toEqual(['meter-1', 'tracker-17']);
    const p = pod(ms);
    expect(p.spec.volumes.find((v: Any) => v.name === 'devices').secret.secretName).toBe(
      secret.metadata.name,
    );
    for (const m of p.spec.containers[0].volumeMounts) expect(m.subPath).toBeUndefined();
    // With no devices, the Secret still holds a valid (empty) device file.
    const empty = find(renderChart(CHART).manifests, 'Secret') as Any;
    writeFileSync(join(dir, 'empty.yaml'), empty.stringData['devices.yaml']);
    expect(readDeviceFile(join(dir, 'empty.yaml'))).toEqual([]);
    const cm = renderChart(CHART, { devices: { existingConfigMap: 'fleet' } }).manifests;
    expect(pod(cm).spec.volumes.find((v: Any) => v.name === 'devices').configMap.name).toBe('fleet');
  });

  it('lines up the HPA, the PodDisruptionBudget and the ServiceMonitor with what they select', () => {
    const ms = renderChart(CHART, {
      ...FLEET,
      autoscaling: { enabled: true, minReplicas: 2 },
      serviceMonitor: { enabled: true },
    }).manifests;
    const deploy = find(ms, 'Deployment') as Any;
    expect(deploy.spec.replicas).toBeUndefined(); // the HPA owns the replica count
    const hpa = find(ms, 'HorizontalPodAutoscaler') as Any;
    expect(hpa.spec.scaleTargetRef).toEqual({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      name: deploy.metadata.name,
    });
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 10 });
    const pdb = find(ms, 'PodDisruptionBudget') as Any;
    expect(pod(ms).metadata.labels).toMatchObject(pdb.spec.selector.matchLabels);
    expect(deploy.spec.selector.matchLabels).toEqual(pdb.spec.selector.matchLabels);
    const monitor = find(ms, 'ServiceMonitor') as Any;
    const http = find(ms, 'Service', 'gw-cellgate-http') as Any;
    expect(http.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    expect(find(ms, 'Service', 'gw-cellgate').metadata.labels).not.toMatchObject(
      monitor.spec.selector.matchLabels,
    );
    expect(monitor.spec.endpoints[0]).toMatchObject({ port: 'http', path: '/metrics' });
    expect(http.spec.ports.map((p: Any) => p.name)).toContain('http');
  });

  it('makes a StatefulSet with a volume per pod when persistence is on (a durable outbox)', async () => {
    const ms = renderChart(CHART, {
      ...FLEET,
      persistence: { enabled: true, storageClass: 'gp3', size: '20Gi' },
      config: {
        publisher: { type: 'aws-iot', endpoint: 'x-ats.iot.eu-west-1.amazonaws.com', ack: 'after-outbox' },
      },
    }).manifests;
    for (const m of ms) await validateManifest(m);
    expect(ms.map((m) => m.kind)).not.toContain('Deployment');
    const sts = find(ms, 'StatefulSet') as Any;
    expect(sts.spec.volumeClaimTemplates).toEqual([
      {
        metadata: { name: 'data' },
        spec: {
          accessModes: ['ReadWriteOnce'],
          storageClassName: 'gp3',
          resources: { requests: { storage: '20Gi' } },
        },
      },
    ]);
    expect(sts.spec.template.spec.volumes.map((v: Any) => v.name)).not.toContain('data');
    expect(sts.spec.serviceName).toBe('gw-cellgate-http');
    expect((find(ms, 'HorizontalPodAutoscaler') as Any).spec.scaleTargetRef).toMatchObject({
      kind: 'StatefulSet',
      name: sts.metadata.name,
    });
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-chart-'));
    writeFileSync(
      join(dir, 'cellgate.yaml'),
      (find(ms, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml'],
    );
    const { config } = loadConfig(join(dir, 'cellgate.yaml'), {});
    expect(config.publisher).toMatchObject({ type: 'aws-iot', ack: 'after-outbox' });
    expect(config.publisher.outbox.dir).toBe('/var/lib/cellgate/outbox');
  });

  it('ships the Grafana dashboard in a ConfigMap, byte for byte', () => {
    const cm = find(renderChart(CHART).manifests, 'ConfigMap', 'gw-cellgate-dashboard') as Any;
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    const file = readFileSync(join(CHART, 'dashboards/cellgate.json'), 'utf8');
    expect(cm.data['cellgate.json']).toBe(file);
    expect(JSON.parse(cm.data['cellgate.json']).uid).toBe('cellgate');
  });

  it('renders NOTES.txt with the Service name, and warns when IRSA or devices are missing', () => {
    const notes = renderChart(CHART).notes;
    expect(notes).toContain('kubectl -n iot get service gw-cellgate');
    expect(notes).toContain('simulate --host gw-cellgate.iot.svc');
    expect(notes).toContain('aws.roleArn is not set');
    expect(notes).toContain('no devices are configured yet');
    expect(notes).toContain('config.publisher.type is "stdout"');
    expect(notes).toContain('state.store is memory, so this release runs one replica');
    const iot = renderChart(CHART, { config: { publisher: { type: 'aws-iot', endpoint: 'e' } } }).notes;
    expect(iot).not.toContain('config.publisher.type is');
    const full = renderChart(CHART, FULL).notes;
    expect(full).not.toContain('aws.roleArn is not set');
    expect(full).not.toContain('no devices are configured');
  });

  it('rejects values the schema does not allow, naming them', () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ replicas: 3 }, /must NOT have additional properties/],
      [{ replicaCount: -1 }, /\/replicaCount must be >= 0/],
      [{ service: { scheme: 'public' } }, /\/service\/scheme must be equal to one of the allowed values/],
      [{ aws: { roleArn: 'my-role' } }, /\/aws\/roleArn must match pattern/],
      [{ config: { coap: { port: 'five' } } }, /\/config\/coap\/port must be integer/],
      [{ config: { bogus: {} } }, /\/config must NOT have additional properties/],
      [
        { config: { log: { level: 'loud' } } },
        /\/config\/log\/level must be equal to one of the allowed values/,
      ],
      [{ serviceMonitor: { interval: 'often' } }, /\/serviceMonitor\/interval must match pattern/],
      [{ resources: { requests: { cpu: 'lots' } } }, /\/resources\/requests\/cpu/],
      [{ state: { store: 'etcd' } }, /\/state\/store must be equal to one of the allowed values/],
      [{ state: { redis: { url: 'http://redis:6379' } } }, /\/state\/redis\/url must match pattern/],
      [{ state: { redis: { password: 'x' } } }, /\/state\/redis must NOT have additional properties/],
      [{ state: { encryptionKeySecret: { name: 'k', key: '' } } }, /\/state\/encryptionKeySecret\/key/],
    ];
    for (const [values, msg] of bad) {
      expect(() => renderChart(CHART, values), JSON.stringify(values)).toThrow(ValuesError);
      expect(() => renderChart(CHART, values), JSON.stringify(values)).toThrow(msg);
    }
  });

  it('fails the render for contradictory values, saying why', () => {
    expect(() => renderChart(CHART, { devices: { existingSecret: 'a', existingConfigMap: 'b' } })).toThrow(
      /set existingSecret or existingConfigMap, not both/,
    );
    expect(() => renderChart(CHART, { devices: { existingSecret: 'a', list: [{ id: 'x' }] } })).toThrow(
      /list cannot be combined/,
    );
    expect(() =>
      renderChart(CHART, { config: { coap: { nosec: false }, dtls: { enabled: false } } }),
    ).toThrow(/coap\.nosec and dtls\.enabled are both false: nothing to serve/);
  });

  it('refuses more than one replica or autoscaling on the memory store, saying what to set', () => {
    for (const values of [
      { replicaCount: 2 },
      { autoscaling: { enabled: true } },
      { replicaCount: 1, autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 1 } },
      { ...FLEET, state: { store: 'memory' } },
    ]) {
      const render = () => renderChart(CHART, values);
      expect(render, JSON.stringify(values)).toThrow(/state\.store is memory/);
      expect(render, JSON.stringify(values)).toThrow(
        /set state\.store: redis, state\.redis\.url \(or state\.redis\.urlSecret\) and state\.encryptionKeySecret\.name \(see values-fleet\.yaml/,
      );
    }
    // One replica, or none (scaled to zero), is what the memory store can serve.
    for (const replicaCount of [0, 1]) {
      const ms = renderChart(CHART, { replicaCount }).manifests;
      expect((find(ms, 'Deployment') as Any).spec.replicas).toBe(replicaCount);
    }
    // A fleet store with one replica is allowed (a fleet being set up, or scaled down).
    expect(() =>
      renderChart(CHART, { ...FLEET, autoscaling: { enabled: false }, replicaCount: 1 }),
    ).not.toThrow();
  });

  it('refuses a Redis store without a URL or a sealing key, and state settings under config', () => {
    const redis = (state: Record<string, Value>) =>
      renderChart(CHART, { state: { store: 'redis', ...state } });
    const key = { encryptionKeySecret: { name: 'state-key' } };
    expect(() => redis(key)).toThrow(
      /state\.store is redis: set state\.redis\.url .* or state\.redis\.urlSecret\.name/,
    );
    expect(() => redis({ redis: { url: 'redis://r:6379' } })).toThrow(
      /state\.store is redis: set state\.encryptionKeySecret\.name/,
    );
    expect(() =>
      redis({ ...key, redis: { url: 'redis://r:6379', urlSecret: { name: 'redis-url' } } }),
    ).toThrow(/set url or urlSecret\.name, not both/);
    expect(() => redis({ ...key, redis: { url: 'redis://r:6379' } })).not.toThrow();
    for (const state of [
      { store: 'redis' },
      { encryptionKeyFile: '/k' },
      { redis: { url: 'redis://r' } },
      { redis: { cluster: false } },
    ]) {
      expect(() => renderChart(CHART, { config: { state } }), JSON.stringify(state)).toThrow(
        /config\.state: set the store, .* with the chart's state values/,
      );
    }
    // Tuning keys the chart does not own pass through.
    const tuned = renderChart(CHART, { ...FLEET, config: { state: { redis: { commandTimeoutMs: 250 } } } });
    expect(loadRendered(tuned.manifests).config.state.redis).toMatchObject({
      commandTimeoutMs: 250,
      cluster: true,
    });
  });

  it('renders values-fleet.yaml into valid objects: Redis from Secrets, HPA, PodDisruptionBudget', async () => {
    const r = renderChart(CHART, FLEET);
    for (const m of r.manifests) await validateManifest(m);
    const kinds = r.manifests.map((m) => m.kind);
    expect(kinds).toEqual(expect.arrayContaining(['HorizontalPodAutoscaler', 'PodDisruptionBudget']));
    const hpa = find(r.manifests, 'HorizontalPodAutoscaler') as Any;
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect((find(r.manifests, 'PodDisruptionBudget') as Any).spec.maxUnavailable).toBe(1);
    expect((find(r.manifests, 'Deployment') as Any).spec.replicas).toBeUndefined();
    // The gateway loads the rendered configuration: a Redis store, in cluster mode, over TLS.
    const { config } = loadRendered(r.manifests);
    expect(config.state.store).toBe('redis');
    expect(config.state.redis.url).toMatch(/^rediss:\/\/clustercfg\./);
    expect(config.state.redis.cluster).toBe(true);
    // Downlinks follow the shared store, so a command queued through one pod reaches a device on another.
    expect(config.downlink.shadow.source).toBe('redis');
    expect(config.downlink.commands.store).toBe('redis');
    // The password and the keyring are files mounted from the Secrets the values name, never in the ConfigMap.
    expect(secretFile(r.manifests, config.state.redis.passwordFile)).toEqual({
      secret: 'cellgate-redis',
      key: 'password',
    });
    expect(secretFile(r.manifests, config.state.encryptionKeyFile)).toEqual({
      secret: 'cellgate-state-key',
      key: 'keyring',
    });
    // The keyring the values file tells operators to make is one the gateway reads.
    expect(readFileSync(join(CHART, 'values-fleet.yaml'), 'utf8')).toContain(
      `--from-literal=keyring="0:$(openssl rand -base64 32)"`,
    );
    expect(Keyring.parse(`0:${randomBytes(32).toString('base64')}`).ids).toEqual([0]);
    expect(r.notes).toContain(
      'the replicas share DTLS sessions, deduplication and downlinks through Redis at\n  rediss://clustercfg.',
    );
    expect(r.notes).toContain('Secret cellgate-state-key exists in namespace iot, with key keyring');
    expect(r.notes).toContain('Secret cellgate-redis with key password');
    expect(r.notes).not.toContain('state.store is memory');
    expect(r.notes).not.toContain('podDisruptionBudget.enabled is false');
  });

  it('takes a Redis URL with credentials from a Secret through the environment', () => {
    const ms = renderChart(CHART, {
      ...FLEET,
      state: {
        ...(FLEET.state as Record<string, Value>),
        redis: { url: '', urlSecret: { name: 'redis-url' }, passwordSecret: { name: '' } },
      },
    }).manifests;
    const c = pod(ms).spec.containers[0];
    const env = c.env.find((e: Any) => e.name === 'CELLGATE_STATE__REDIS__URL');
    expect(env).toEqual({
      name: 'CELLGATE_STATE__REDIS__URL',
      valueFrom: { secretKeyRef: { name: 'redis-url', key: 'url' } },
    });
    expect(pod(ms).spec.volumes.map((v: Any) => v.name)).not.toContain('state-redis');
    const url = 'rediss://cellgate:s3cret@redis.internal:6380';
    const { config } = loadRendered(ms, { CELLGATE_STATE__REDIS__URL: url });
    expect(config.state.redis.url).toBe(url);
    expect(config.state.redis.passwordFile).toBe('');
    const cm = (find(ms, 'ConfigMap', 'gw-cellgate').data as Any)['cellgate.yaml'] as string;
    expect(cm).not.toContain('s3cret');
    const notes = renderChart(CHART, { ...FLEET, autoscaling: { enabled: false }, replicaCount: 1 }).notes;
    expect(notes).toContain('replicaCount is 1 and autoscaling is off: raise either to run a fleet');
  });

  it('validates config with the gateway’s own schema (run `npm run helm:schema` after changing src/config)', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as {
      properties: { config: Record<string, unknown> };
    };
    const { $schema: _s, ...expected } = z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7' });
    const { description: _d, ...actual } = schema.properties.config;
    expect(actual).toEqual(expected);
  });
});
