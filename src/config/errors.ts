/** Configuration mistakes, and how the environment names config keys. */

/**
 * A mistake in the configuration or the environment the gateway starts in: a bad key, a device file that
 * does not validate, a port already in use. Each problem is one line saying where (file or variable, key or
 * entry), what is wrong and, where it helps, what to do. The CLI prints them and exits 78 (EX_CONFIG).
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[], options?: ErrorOptions) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'), options);
    this.problems = list;
  }
}

export const ENV_PREFIX = 'CELLGATE_';

/** `dtlsPort` → `DTLS_PORT`. */
function upperSnake(key: string): string {
  return key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

/** The environment variable that sets a config key: `['coap', 'port']` → `CELLGATE_COAP__PORT`. */
export function envVarFor(path: readonly (string | number)[]): string {
  return ENV_PREFIX + path.map((p) => upperSnake(String(p))).join('__');
}

export interface ListenTarget {
  /** `UDP` or `TCP`. */
  protocol: string;
  bind: string;
  port: number;
  /** Config keys of the address and the port, e.g. `coap.bind`, `coap.port`. */
  bindKey: string;
  portKey: string;
}

/**
 * A socket that cannot bind because of the machine it runs on (port in use, no such address, no
 * privilege) is a configuration mistake: a ConfigError naming the keys and variables to change. Any other
 * error is returned as it is.
 */
export function listenError(err: unknown, t: ListenTarget): unknown {
  const e = err as NodeJS.ErrnoException;
  const code = e?.code ?? (e?.cause as NodeJS.ErrnoException | undefined)?.code;
  const at = `${t.protocol} ${t.bind}:${t.port}`;
  const setting = (key: string) => `set ${key} or ${envVarFor(key.split('.'))}`;
  if (code === 'EADDRINUSE')
    return new ConfigError(`${at} is in use by another process; ${setting(t.portKey)}`, { cause: err });
  if (code === 'EACCES')
    return new ConfigError(
      `${at}: permission denied (ports below 1024 need privileges); ${setting(t.portKey)}`,
      { cause: err },
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EINVAL')
    return new ConfigError(`${at}: ${t.bind} is not an address of this machine; ${setting(t.bindKey)}`, {
      cause: err,
    });
  return err;
}

/** A schema issue's message, with "received undefined" said plainly. */
export function issueMessage(issue: { message: string }): string {
  const m = /^Invalid input: expected (.+), received undefined$/.exec(issue.message);
  return m ? `missing (expected ${m[1]})` : issue.message;
}
