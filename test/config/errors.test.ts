/** The errors that end a command carry stable codes; a socket that cannot bind is a configuration mistake. */
import { describe, expect, it } from 'vitest';
import { ConfigError, listenError, UsageError } from '../../src/config/errors.js';
import { parseSimOptions } from '../../src/sim/options.js';

const target = { protocol: 'UDP', bind: '127.0.0.1', port: 5683, bindKey: 'coap.bind', portKey: 'coap.port' };

describe('error codes', () => {
  it('marks a configuration mistake CELLGATE_CONFIG_INVALID unless it names a code of its own', () => {
    expect(new ConfigError('coap.port: too big')).toMatchObject({
      code: 'CELLGATE_CONFIG_INVALID',
      problems: ['coap.port: too big'],
    });
    expect(new ConfigError(['a', 'b'], { code: 'CELLGATE_OUTBOX_IN_USE' }).code).toBe(
      'CELLGATE_OUTBOX_IN_USE',
    );
  });

  it('turns a socket that cannot bind into CELLGATE_LISTEN_FAILED naming the key, and passes other errors on', () => {
    const inUse = Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE' });
    const err = listenError(inUse, target);
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'CELLGATE_LISTEN_FAILED', cause: inUse });
    expect((err as ConfigError).message).toBe(
      'UDP 127.0.0.1:5683 is in use by another process; set coap.port or CELLGATE_COAP__PORT',
    );
    for (const code of ['EACCES', 'EADDRNOTAVAIL'])
      expect(listenError(Object.assign(new Error(code), { code }), target)).toMatchObject({
        code: 'CELLGATE_LISTEN_FAILED',
      });
    const other = Object.assign(new Error('boom'), { code: 'EIO' });
    expect(listenError(other, target)).toBe(other);
  });

  it('marks command-line mistakes CELLGATE_USAGE', () => {
    expect(new UsageError('--count must be a number')).toMatchObject({
      name: 'UsageError',
      code: 'CELLGATE_USAGE',
    });
    expect(() => parseSimOptions(['--no-such-option'])).toThrow(UsageError);
    expect(() => parseSimOptions(['--block-size', '100'])).toThrow(
      expect.objectContaining({ code: 'CELLGATE_USAGE', message: '--block-size must be a power of two' }),
    );
  });
});
