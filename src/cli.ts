#!/usr/bin/env node
/** The `cellgate` command. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { z } from 'zod';
import { codecCommand } from './codecs/cli.js';
import { ConfigError, loadConfig } from './config/load.js';
import { renderConfigReference } from './config/reference.js';
import { configSchema } from './config/schema.js';
import { startGateway } from './gateway/app.js';
import { DeviceFileError } from './devices/file-registry.js';

const USAGE = `Usage: cellgate <command> [options]

Commands:
  start [--config FILE]        run the gateway (FILE defaults to $CELLGATE_CONFIG)
  config check [--config FILE] validate a config file and print it with defaults filled in
  config schema                print the config's JSON Schema
  config docs                  print the configuration reference (Markdown)
  codec list [--config FILE]   list built-in and configured codecs
  codec test <codec> <hex | @file> [--options JSON] [--content-format N] [--path P] [--config FILE]
                               decode a payload and print the JSON (for plugin authors)
  codec encode <codec> <JSON | @file> [--options JSON] [--accept N] [--config FILE]
                               encode a downlink and print the bytes as hex
  version                      print the version

Environment: CELLGATE_<SECTION>__<KEY>=value overrides a config key,
e.g. CELLGATE_COAP__PORT=5683 or CELLGATE_PUBLISHER__TYPE=stdout.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

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
  const gw = await startGateway(loaded);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    gw.log.info({ signal }, 'shutting down');
    gw.close().then(
      () => process.exit(0),
      (err: unknown) => {
        gw.log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
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
        process.stdout.write(JSON.stringify(z.toJSONSchema(configSchema, { io: 'input' }), null, 2) + '\n');
        return 0;
      }
      process.stderr.write(USAGE);
      return 2;
    }
    case 'codec':
      return codecCommand(rest, process.stdout, process.stderr);
    case 'version':
    case '--version':
      process.stdout.write(version() + '\n');
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
    if (err instanceof ConfigError || err instanceof DeviceFileError) {
      process.stderr.write(`cellgate: ${err.message}\n`);
      process.exit(78);
    }
    process.stderr.write(`cellgate: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
