/**
 * The RADIUS clients allowed to send accounting (`radius.clients`): each an address or CIDR block with its shared
 * secret. The most specific block that contains a packet's source wins.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import type { RadiusConfig } from '../config/udp.js';
import { decodeKey } from '../devices/device.js';
import { plainAddress } from '../transport/udp.js';

interface Client {
  readonly block: BlockList;
  readonly bits: number;
  readonly secret: Buffer;
  readonly address: string;
}

function secretOf(c: RadiusConfig['clients'][number], baseDir: string): Buffer {
  const where = `radius.clients ${c.address}`;
  let text = c.secret;
  if (text === undefined) {
    const file = resolve(baseDir, c.secretFile as string);
    try {
      text = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new Error(
        `${where}: cannot read secretFile ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        {
          cause: err,
        },
      );
    }
  }
  try {
    return decodeKey(text);
  } catch (err) {
    throw new Error(`${where}: secret: ${(err as Error).message.replace('a PSK', 'a secret')}`, {
      cause: err,
    });
  }
}

export class RadiusClients {
  private readonly clients: Client[];

  constructor(config: RadiusConfig['clients'], baseDir: string) {
    this.clients = config
      .map((c) => {
        const [address, bitsText] = c.address.split('/');
        const type = isIPv4(address) ? 'ipv4' : 'ipv6';
        const bits = bitsText === undefined ? (type === 'ipv4' ? 32 : 128) : Number(bitsText);
        const block = new BlockList();
        block.addSubnet(address, bits, type);
        return { block, bits, secret: secretOf(c, baseDir), address: c.address };
      })
      .sort((a, b) => b.bits - a.bits);
  }

  get size(): number {
    return this.clients.length;
  }

  /** The shared secret of the client at `address`, or undefined when it is not a client. */
  secretFor(address: string): Buffer | undefined {
    const a = plainAddress(address);
    const type = isIPv4(a) ? 'ipv4' : 'ipv6';
    for (const c of this.clients) if (c.block.check(a, type)) return c.secret;
    return undefined;
  }
}
