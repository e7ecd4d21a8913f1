/** The RADIUS clients allowed to send accounting: the most specific address block, secrets from files. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RadiusClients } from '../../src/radius/clients.js';

describe('RADIUS client blocks', () => {
  it('picks the most specific client block', () => {
    const clients = new RadiusClients(
      [
        { address: '10.0.0.0/8', secret: 'text:wide' },
        { address: '10.1.2.3', secret: 'hex:6e6172726f77' },
      ],
      '.',
    );
    expect(clients.secretFor('10.1.2.3')?.toString()).toBe('narrow');
    expect(clients.secretFor('::ffff:10.9.9.9')?.toString()).toBe('wide');
    expect(clients.secretFor('192.168.1.1')).toBeUndefined();
  });

  it('reads a client secret from secretFile, relative to the config folder, and says what is wrong', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cellgate-radius-'));
    try {
      writeFileSync(join(dir, 'pgw.secret'), 'text:from-file\n');
      const clients = new RadiusClients([{ address: '10.0.0.1', secretFile: 'pgw.secret' }], dir);
      expect(clients.secretFor('10.0.0.1')?.toString()).toBe('from-file');
      expect(() => new RadiusClients([{ address: '10.0.0.1', secretFile: 'missing' }], dir)).toThrow(
        /radius.clients 10.0.0.1: cannot read secretFile .*missing: ENOENT/,
      );
      writeFileSync(join(dir, 'bad.secret'), 'plain');
      expect(() => new RadiusClients([{ address: '10.0.0.1', secretFile: 'bad.secret' }], dir)).toThrow(
        /secret: a key is written hex:/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
