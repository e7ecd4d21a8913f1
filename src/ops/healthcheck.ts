/**
 * `cellgate healthcheck [--config FILE] [--ready] [--url URL]`: asks the running gateway's HTTP side port for
 * /healthz (or /readyz) and exits 0 when it answers 200. For container HEALTHCHECKs (the runtime image has no
 * shell or curl). The port comes from the config (http.port, environment overrides applied).
 */
import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.js';

function localHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '') return '127.0.0.1';
  if (bind === '::') return '[::1]';
  return bind.includes(':') ? `[${bind}]` : bind;
}

export function healthcheckUrl(argv: string[], env: NodeJS.ProcessEnv = process.env): string {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      ready: { type: 'boolean' },
      url: { type: 'string' },
    },
  });
  if (values.url) return values.url;
  const { config } = loadConfig(values.config ?? env.CELLGATE_CONFIG, env);
  return `http://${localHost(config.http.bind)}:${config.http.port}/${values.ready ? 'readyz' : 'healthz'}`;
}

/** Resolves to the exit code: 0 on HTTP 200, 1 otherwise (including no answer within `timeoutMs`). */
export function healthcheck(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 0 : 1);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(1));
    req.end();
  });
}
