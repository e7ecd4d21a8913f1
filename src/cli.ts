#!/usr/bin/env node
/** The `cellgate` command. */
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { z } from 'zod';
import { codecCommand } from './codecs/cli.js';
import { ConfigError, loadConfig } from './config/load.js';
import { KeyringError } from './state/sealing.js';
import { renderConfigReference } from './config/reference.js';
import { configSchema } from './config/schema.js';
import { startGateway } from './gateway/app.js';
import { applyRuntime } from './ops/runtime.js';
import { DeviceFileError } from './devices/file-registry.js';
import { healthcheck, healthcheckUrl } from './ops/healthcheck.js';
import { exitOnTermination } from './ops/shutdown.js';
import { packageVersion } from './ops/version.js';
import { simulateCommand } from './sim/command.js';

const USAGE = `Usage: cellgate <command> [options]

Commands:
  start [--config FILE]        run the gateway (FILE defaults to $CELLGATE_CONFIG)
  config check [--config FILE] validate a config file and print it with defaults filled in
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
e.g. CELLGATE_COAP__PORT=5683 or CELLGATE_PUBLISHER__TYPE=stdout.
`;

function configFile(argv: string[]): string | undefined {
  const { values } = parseArgs({
    args: argv,
    options: { config: { type: 'string', short: 'c' } },
    strict: true,
  });
  return values.config ?? process.env.CELLGATE_CONFIG;
}

async function start(argv: string[]): Promise<number> {
  const loaded = loadConfig(configFile(argv));
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
        const loaded = loadConfig(configFile(args));
        process.stdout.write(stringify(loaded.config));
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
    if (err instanceof ConfigError || err instanceof DeviceFileError || err instanceof KeyringError) {
      process.stderr.write(`cellgate: ${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`cellgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
