/** The start-up checks report every problem in one ConfigError, with the code the problems share. */
import { dirname, join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/errors.js';
import { loadConfig } from '../../src/config/load.js';
import { preflight } from '../../src/gateway/preflight.js';
import { tempFile } from '../support/temp-file.js';

/** A config file beside a device file in which device `a` has a bad IP. */
function configWith(publisher: string): string {
  const file = tempFile(
    'cellgate.yaml',
    `devices: { file: devices.yaml, watch: false }\npublisher: ${publisher}\n`,
  );
  writeFileSync(join(dirname(file), 'devices.yaml'), '- id: a\n  ip: 999.1.1.1\n');
  return file;
}

function refusal(file: string): ConfigError {
  try {
    preflight(loadConfig(file, {}), { env: {} });
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('preflight passed');
}

describe('preflight', () => {
  it('keeps the code of the only kind of problem it found', () => {
    const err = refusal(configWith('{ type: "null" }'));
    expect(err.code).toBe('CELLGATE_DEVICE_FILE_INVALID');
    expect(err.problems).toEqual([expect.stringMatching(/device #1 \(id "a"\): ip: not an IP address/)]);
  });

  it('says CELLGATE_CONFIG_INVALID when problems of several kinds come together', () => {
    const err = refusal(configWith('{ type: aws-iot }'));
    expect(err.code).toBe('CELLGATE_CONFIG_INVALID');
    expect(err.problems.length).toBeGreaterThan(1);
  });
});
