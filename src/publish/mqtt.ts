/**
 * The `mqtt` sink: publishes to any MQTT broker (AWS IoT Core over MQTT, EMQX, Mosquitto) with MQTT 3.1.1 or
 * 5, over TCP or TLS with an X.509 client certificate. With MQTT 5 each message carries the content type
 * `application/json`, the UTF-8 payload format indicator and the user properties `messageId` and
 * `deviceId`. Retries, time-outs and the circuit breaker are in `Delivery`; while the client is not
 * connected an attempt fails at once (the client reconnects by itself).
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import mqtt, { type IClientOptions, type IClientPublishOptions, type MqttClient } from 'mqtt';
import type { MqttPublisherConfig } from '../config/publisher.js';
import { ConfigError } from '../config/errors.js';
import type { Logger } from '../ops/logger.js';
import { gaugeFrom, type MetricsRegistry } from '../ops/metrics.js';
import type { AttemptListener, FailureKind, DeliveryJob, Sink } from './delivery.js';
import { messageBody } from './publisher.js';

/** What an MQTT 5 PUBACK reason code (or a client error code) means for a retry. */
export function mqttFailureKind(code: unknown): FailureKind {
  if (typeof code !== 'number') return 'network';
  if (code === 0x87 || code === 0x86 || code === 0x8c) return 'auth'; // not authorized, bad user name or password, bad authentication method
  if (code === 0x97 || code === 0x89 || code === 0x93) return 'throttled'; // quota exceeded, server busy, receive maximum exceeded
  if (code === 0x90 || code === 0x95 || code === 0x99 || code === 0x91 || code === 0x83) return 'rejected'; // topic invalid, packet too large, payload format invalid, packet id in use, implementation specific
  return 'server';
}

/** The TLS files `publisher.tls` names, read; throws a ConfigError naming the key of a file it cannot read. */
export function mqttTlsFiles(config: Pick<MqttPublisherConfig, 'tls'>): {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
} {
  const out: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  const problems: string[] = [];
  for (const k of ['ca', 'cert', 'key'] as const) {
    const file = config.tls[k];
    if (!file) continue;
    try {
      out[k] = readFileSync(file);
    } catch (err) {
      problems.push(
        `publisher.tls.${k}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

export class MqttSink implements Sink {
  readonly type = 'mqtt';
  private connectedOnce = false;
  private wasConnected = false;

  private constructor(
    private readonly client: MqttClient,
    private readonly qos: 0 | 1,
    private readonly v5: boolean,
    log: Logger,
  ) {
    client.on('connect', () => {
      if (!this.wasConnected) log.info({ broker: client.options.host }, 'mqtt publisher connected');
      this.wasConnected = this.connectedOnce = true;
    });
    client.on('close', () => {
      if (this.wasConnected)
        log.warn({ broker: client.options.host }, 'mqtt publisher disconnected; reconnecting');
      this.wasConnected = false;
    });
    client.on('error', (err: Error) => {
      if (this.wasConnected || !this.connectedOnce)
        log.warn({ err: err.message }, 'mqtt publisher: connection error');
    });
  }

  /** Connects (waiting up to the connect timeout for the first connection, without failing) and builds the sink. */
  static async fromConfig(
    config: MqttPublisherConfig,
    log: Logger,
    metrics?: MetricsRegistry,
  ): Promise<MqttSink> {
    const tls = config.tls;
    const opts: IClientOptions = {
      protocolVersion: config.protocolVersion,
      clientId: config.clientId || `cellgate-${hostname()}`,
      clean: true,
      keepalive: config.keepaliveSeconds,
      connectTimeout: config.connectTimeoutMs,
      reconnectPeriod: config.reconnectPeriodMs,
      queueQoSZero: false,
      resubscribe: false,
      ...(config.username ? { username: config.username } : {}),
      ...(config.password ? { password: config.password } : {}),
      ...mqttTlsFiles(config),
      ...(tls.servername ? { servername: tls.servername } : {}),
      ...(tls.alpn ? { ALPNProtocols: [tls.alpn] } : {}),
      rejectUnauthorized: tls.rejectUnauthorized,
    };
    const client = mqtt.connect(config.url, opts);
    const sink = new MqttSink(client, config.qos, config.protocolVersion === 5, log);
    if (metrics)
      gaugeFrom(metrics, 'cellgate_mqtt_connected', '1 while the MQTT publisher is connected.', () =>
        client.connected ? 1 : 0,
      );
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        client.off('connect', done);
        client.off('error', done);
        resolve();
      };
      const timer = setTimeout(done, config.connectTimeoutMs);
      client.once('connect', done);
      client.once('error', done);
    });
    return sink;
  }

  start(job: DeliveryJob, listener: AttemptListener): void {
    if (!this.client.connected) {
      return listener.settle(job, job.attempt, {
        kind: 'network',
        message: 'not connected to the MQTT broker',
      });
    }
    const msg = job.msg;
    if (msg.topic === '' || /[+#]/.test(msg.topic) || msg.topic.includes('\u0000')) {
      return listener.settle(job, job.attempt, {
        kind: 'rejected',
        message: `invalid MQTT topic "${msg.topic}"`,
      });
    }
    const opts: IClientPublishOptions = this.v5
      ? {
          qos: this.qos,
          properties: {
            contentType: 'application/json',
            payloadFormatIndicator: true,
            userProperties: { messageId: msg.id, deviceId: msg.deviceId },
          },
        }
      : { qos: this.qos };
    const attempt = job.attempt;
    this.client.publish(msg.topic, messageBody(msg), opts, (err) => {
      if (!err) return listener.settle(job, attempt, null);
      const code = (err as Error & { code?: unknown }).code;
      listener.settle(job, attempt, { kind: mqttFailureKind(code), message: err.message });
    });
  }

  abort(): void {
    // A QoS 1 message stays with the client, which sends it again after a reconnect; the late answer is ignored.
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.client.end(false, {}, () => resolve()));
  }
}
