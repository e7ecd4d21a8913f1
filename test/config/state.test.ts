/** The `state` section: defaults, the rules that tie it to the downlink stores, the deprecated keys it folds in. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, loadConfig, parseConfig } from '../../src/config/load.js';
import { stateDeprecations } from '../../src/config/state.js';
import { redisClientOptions } from '../../src/state/redis.js';

const KEYED = { store: 'redis', encryptionKeyFile: '/run/secrets/state.key' };

describe('state config', () => {
  it('defaults to the memory store and a local Redis URL', () => {
    const c = parseConfig({});
    expect(c.state).toEqual({
      store: 'memory',
      redis: {
        url: 'redis://127.0.0.1:6379',
        passwordFile: '',
        keyPrefix: 'cellgate:',
        cluster: false,
        commandTimeoutMs: 1000,
        connectTimeoutMs: 5000,
        tlsCaFile: '',
      },
      encryptionKeyFile: '',
    });
    expect(c.downlink.shadow.source).toBe('memory');
    expect(c.downlink.commands.store).toBe('memory');
  });

  it('requires the sealing key with the redis store, and says how to make one', () => {
    expect(() => parseConfig({ state: { store: 'redis' } })).toThrow(
      /state\.encryptionKeyFile: required with state\.store: redis.*openssl rand/,
    );
  });

  it('refuses URLs that are not redis:// or rediss://, and unknown keys', () => {
    expect(() => parseConfig({ state: { redis: { url: 'http://cache:6379' } } })).toThrow(
      /state\.redis\.url: a Redis URL is redis:\/\//,
    );
    expect(() => parseConfig({ state: { redis: { host: 'x' } } })).toThrow(/state\.redis\.host: unknown key/);
    expect(() => parseConfig({ state: { store: 'valkey' } })).toThrow(/state\.store: /);
    expect(() => parseConfig({ state: { redis: { keyPrefix: 'a{b}' } } })).toThrow(/state\.redis\.keyPrefix/);
  });

  it('with state.store redis, downlink shadows and commands live in Redis unless AWS IoT holds shadows', () => {
    const c = parseConfig({ state: KEYED });
    expect(c.downlink.shadow.source).toBe('redis');
    expect(c.downlink.commands.store).toBe('redis');
    const aws = parseConfig({ state: KEYED, downlink: { shadow: { source: 'aws-iot' } } });
    expect(aws.downlink.shadow.source).toBe('aws-iot');
    expect(aws.downlink.commands.store).toBe('redis');
  });

  it('refuses a downlink store kept in one process when state is shared', () => {
    expect(() => parseConfig({ state: KEYED, downlink: { shadow: { source: 'memory' } } })).toThrow(
      /downlink\.shadow\.source: memory: with state\.store: redis/,
    );
    expect(() => parseConfig({ state: KEYED, downlink: { commands: { store: 'memory' } } })).toThrow(
      /downlink\.commands\.store: memory: with state\.store: redis/,
    );
  });

  it('reads the deprecated downlink.redis keys into state.redis, and warns', () => {
    const c = parseConfig({
      downlink: {
        shadow: { source: 'redis' },
        redis: { url: 'redis://old:6379', keyPrefix: 'old:', commandTimeoutMs: 700 },
      },
    });
    expect(c.state.redis).toMatchObject({
      url: 'redis://old:6379',
      keyPrefix: 'old:',
      commandTimeoutMs: 700,
    });
    expect(stateDeprecations(c)).toEqual([
      'downlink.redis.url is deprecated and read as state.redis.url: move it there',
      'downlink.redis.keyPrefix is deprecated and read as state.redis.keyPrefix: move it there',
      'downlink.redis.commandTimeoutMs is deprecated and read as state.redis.commandTimeoutMs: move it there',
    ]);
    expect(stateDeprecations(parseConfig({}))).toEqual([]);
  });

  it('keys set in state.redis win over the deprecated ones', () => {
    const raw = {
      state: { redis: { url: 'redis://new:6379' } },
      downlink: { redis: { url: 'redis://old:6379', keyPrefix: 'old:' } },
    };
    const c = parseConfig(raw);
    expect(c.state.redis.url).toBe('redis://new:6379');
    expect(c.state.redis.keyPrefix).toBe('old:');
    expect(stateDeprecations(c)[0]).toBe(
      'downlink.redis.url is deprecated and ignored because state.redis.url is set: remove it',
    );
    // The caller's object is left as it was.
    expect(raw.state.redis).toEqual({ url: 'redis://new:6379' });
  });

  it('is set from the environment like every section', () => {
    const c = parseConfig(
      applyEnvOverrides(
        {},
        {
          CELLGATE_STATE__STORE: 'redis',
          CELLGATE_STATE__ENCRYPTION_KEY_FILE: '/k',
          CELLGATE_STATE__REDIS__CLUSTER: 'true',
          CELLGATE_STATE__REDIS__URL: 'rediss://cfg.example:6379',
        },
      ),
    );
    expect(c.state).toMatchObject({
      store: 'redis',
      encryptionKeyFile: '/k',
      redis: { cluster: true, url: 'rediss://cfg.example:6379' },
    });
  });

  it('resolves its files against the config file folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-state-'));
    const file = join(dir, 'gw.yaml');
    writeFileSync(
      file,
      'state: { store: redis, encryptionKeyFile: k/state.key, redis: { passwordFile: k/pw, tlsCaFile: ca.pem } }\n',
    );
    const { config } = loadConfig(file, {});
    expect(config.state.encryptionKeyFile).toBe(join(dir, 'k/state.key'));
    expect(config.state.redis.passwordFile).toBe(join(dir, 'k/pw'));
    expect(config.state.redis.tlsCaFile).toBe(join(dir, 'ca.pem'));
  });
});

describe('Redis client settings', () => {
  const base = { keyPrefix: 'p:', commandTimeoutMs: 300 };

  it('takes user, password and database from the URL, with command and connect time-outs', () => {
    const o = redisClientOptions({ ...base, url: 'redis://gw:s%40cret@cache.local:6380/2' });
    expect(o.host).toBe('cache.local');
    expect(o.port).toBe(6380);
    expect(o.options).toMatchObject({
      username: 'gw',
      password: 's@cret',
      db: 2,
      commandTimeout: 300,
      connectTimeout: 5000,
    });
    expect(o.options.tls).toBeUndefined();
    expect(typeof o.options.retryStrategy).toBe('function');
    expect(o.options.retryStrategy?.(1000)).toBe(2000);
  });

  it('reads the password from passwordFile (over the URL), trailing newline dropped', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-state-'));
    writeFileSync(join(dir, 'pw'), 'from-file\n');
    const o = redisClientOptions({ ...base, url: 'redis://:inurl@h:1', passwordFile: join(dir, 'pw') });
    expect(o.options.password).toBe('from-file');
    expect(() => redisClientOptions({ ...base, url: 'redis://h', passwordFile: join(dir, 'none') })).toThrow(
      /cannot read state\.redis\.passwordFile/,
    );
  });

  it('speaks TLS for rediss://, checking the server name', () => {
    const o = redisClientOptions({ ...base, url: 'rediss://master.cache.amazonaws.com:6379' });
    expect(o.options.tls).toEqual({ servername: 'master.cache.amazonaws.com' });
  });
});
