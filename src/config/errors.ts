/**
 * Mistakes that end a command — in the configuration or the environment it starts in (exit code 78), on the
 * command line (exit code 2) — each with a stable `code` (listed in docs/operations.md, "Error codes"); and how
 * the environment names config keys.
 */

/**
 * A mistake in the configuration or the environment the gateway starts in: a bad key, a device file that
 * does not validate, a port already in use. Each problem is one line saying where (file or variable, key or
 * entry), what is wrong and, where it helps, what to do. The CLI prints them and exits 78 (EX_CONFIG).
 */
export class ConfigError extends Error {
  override readonly name: string = 'ConfigError';
  readonly code: ConfigErrorCode;
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[], options?: ErrorOptions & { code?: ConfigErrorCode }) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.join('\n'), options);
    this.problems = list;
    this.code = options?.code ?? 'CELLGATE_CONFIG_INVALID';
  }
}

/** What kind of configuration or environment mistake a ConfigError is. */
export type ConfigErrorCode =
  /** Any mistake in the configuration or the environment without a code of its own below. */
  | 'CELLGATE_CONFIG_INVALID'
  /** The device file cannot be read or does not validate. */
  | 'CELLGATE_DEVICE_FILE_INVALID'
  /** The state keyring file cannot be read or parsed. */
  | 'CELLGATE_KEYRING_INVALID'
  /** A listener cannot bind: port in use, no permission, an address this machine does not have. */
  | 'CELLGATE_LISTEN_FAILED'
  /** The outbox folder belongs to another gateway process (on this host or another). */
  | 'CELLGATE_OUTBOX_IN_USE';

/**
 * A mistake on the command line: an unknown command or option, a bad option value. Commands print it with
 * their usage text and exit 2.
 */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly code = 'CELLGATE_USAGE';
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
  const options = { cause: err, code: 'CELLGATE_LISTEN_FAILED' } as const;
  if (code === 'EADDRINUSE')
    return new ConfigError(`${at} is in use by another process; ${setting(t.portKey)}`, options);
  if (code === 'EACCES')
    return new ConfigError(
      `${at}: permission denied (ports below 1024 need privileges); ${setting(t.portKey)}`,
      options,
    );
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EINVAL')
    return new ConfigError(
      `${at}: ${t.bind} is not an address of this machine; ${setting(t.bindKey)}`,
      options,
    );
  return err;
}

/** A schema issue's message, with "received undefined" said plainly. */
export function issueMessage(issue: { message: string }): string {
  const m = /^Invalid input: expected (.+), received undefined$/.exec(issue.message);
  return m ? `missing (expected ${m[1]})` : issue.message;
}
