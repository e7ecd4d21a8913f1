#!/usr/bin/env node
/** The `cellgate` command. */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { z } from 'zod';
import { codecCommand } from './codecs/cli.js';
import { CodecRegistry } from './codecs/registry.js';
import { ConfigError, loadConfig, type LoadedConfig } from './config/load.js';
import { renderConfigReference } from './config/reference.js';
import { configSchema } from './config/schema.js';
import { startGateway } from './gateway/app.js';
import { preflight } from './gateway/preflight.js';
import { applyRuntime } from './ops/runtime.js';
import { healthcheck, healthcheckUrl } from './ops/healthcheck.js';
import { exitOnTermination } from './ops/shutdown.js';
import { packageVersion } from './ops/version.js';
import { simulateCommand } from './sim/command.js';

const USAGE = `Usage: cellgate <command> [options]

Commands:
  start [--config FILE]        run the gateway (FILE defaults to $CELLGATE_CONFIG)
  config check [--config FILE] run every check start runs before binding sockets (config, environment,
                               device file, publisher, admin API); print the config with defaults filled in
  config schema [--draft-7]    print the config's JSON Schema (2020-12, or draft 7 for Helm and editors)
  config docs                  print the configuration reference (Markdown)
  simulate [options]           simulate devices sending uplinks (cellgate simulate --help)
  healthcheck [--config FILE] [--ready]
                               exit 0 when the running gateway answers /healthz (or /readyz)
  codec list [--config FILE]   list built-in and configured codecs
  codec test <codec> <hex | @file> [--options JSON] [--content-format N] [--path P] [--config FILE]
                               decode a payload and print the JSON (for plugin authors)
  codec encode <codec> <JSON | @file> [--options JSON] [--accept N] [--config FILE]
                               encode a downlink and print the bytes as hex
  version                      print the version

Environment: CELLGATE_<SECTION>__<KEY>=value overrides a config key,
e.g. CELLGATE_COAP__PORT=5683, CELLGATE_PUBLISHER__TYPE=stdout or CELLGATE_DTLS__connectionIdLength=4.

Exit codes: 0 done, 1 failure (a bug, a codec error, a simulation with failed uplinks), 2 usage error,
78 configuration or environment error (one line each on stderr).
`;

/** Stack traces of configuration errors too (log.level debug or trace). */
let debugErrors = /^(debug|trace)$/i.test(process.env.CELLGATE_LOG__LEVEL ?? '');

function configFile(argv: string[]): string | undefined {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' } },
    strict: true,
  });
  return values.config ?? process.env.CELLGATE_CONFIG;
}

function load(argv: string[]): LoadedConfig {
  const loaded = loadConfig(configFile(argv));
  debugErrors ||= loaded.config.log.level === 'debug' || loaded.config.log.level === 'trace';
  return loaded;
}

async function start(argv: string[]): Promise<number> {
  const loaded = load(argv);
  applyRuntime(loaded.config.runtime);
  const gw = await startGateway(loaded);
  exitOnTermination(gw, loaded.config.shutdown);
  process.on('SIGHUP', () => void gw.registry.reload());
  return new Promise<number>(() => undefined);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return start(rest);
    case 'config': {
      const [sub, ...args] = rest;
      if (sub === 'check') {
        const loaded = load(args);
        const report = preflight(loaded);
        process.stdout.write(stringify(loaded.config));
        // Codecs that cannot be created do not stop start (their devices' uplinks carry the error): warnings.
        const codecs = new CodecRegistry({ config: loaded.config.codecs, baseDir: loaded.baseDir });
        try {
          for (const f of (await codecs.prepare(report.devices?.devices ?? [])).failed)
            process.stderr.write(
              `cellgate: warning: codec ${f.codec} (devices ${f.devices.join(', ')}): ${f.error}\n`,
            );
        } finally {
          await codecs.close();
        }
        const devices = report.devices?.devices.length ?? 0;
        process.stderr.write(
          `cellgate: ${loaded.file ?? 'the default configuration'} is valid, with ${devices} ` +
            `device${devices === 1 ? '' : 's'} in ${loaded.config.devices.file}\n`,
        );
        return 0;
      }
      if (sub === 'docs') {
        process.stdout.write(renderConfigReference());
        return 0;
      }
      if (sub === 'schema') {
        const target = args.includes('--draft-7') ? 'draft-7' : 'draft-2020-12';
        process.stdout.write(
          JSON.stringify(z.toJSONSchema(configSchema, { io: 'input', target }), null, 2) + '\n',
        );
        return 0;
      }
      process.stderr.write(USAGE);
      return 2;
    }
    case 'simulate':
      return simulateCommand(rest);
    case 'healthcheck':
      return healthcheck(healthcheckUrl(rest));
    case 'codec':
      return codecCommand(rest, process.stdout, process.stderr);
    case 'version':
    case '--version':
      process.stdout.write(packageVersion() + '\n');
      return 0;
    case 'help':
    case '--help':
    case undefined:
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if ((err as { code?: unknown } | null)?.code?.toString().startsWith('ERR_PARSE_ARGS')) {
      // A mistyped option: a usage error, not a bug.
      process.stderr.write(`cellgate: ${(err as Error).message}\n\n${USAGE}`);
      process.exit(2);
    }
    if (err instanceof ConfigError) {
      for (const line of err.problems) process.stderr.write(`cellgate: ${line}\n`);
      if (debugErrors) process.stderr.write(`${err.stack ?? ''}\n`);
      process.exit(78);
    }
    process.stderr.write(`cellgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
