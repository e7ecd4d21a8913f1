/**
 * RFC 9146 Connection IDs over real UDP sockets, with the project's own RFC 9146 client (none of the packaged
 * clients speaks it): the session follows the client to a new source port (NAT rebinding), and an older
 * record replayed from another address does not move it.
 */
import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { ContentType } from '../../src/dtls/protocol/constants.js';
import { connectDtls, type DtlsUdpClient } from '../support/dtls-client.js';
import { startListener, until, type ListenerHarness } from '../support/dtls-harness.js';

let srv: ListenerHarness;
let client: DtlsUdpClient | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  client?.close(false);
  for (const s of sockets.splice(0)) s.close();
  await srv.close();
});

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  sockets.push(s);
  return s;
}

describe('Connection ID over UDP', () => {
  it('keeps the session when the client’s source port changes', async () => {
    srv = await startListener({ connectionIdLength: 6 });
    client = await connectDtls('127.0.0.1', srv.port, {
      identity: 'id-dev1',
      key: Buffer.from('key-of-dev1'),
      cid: Buffer.from([7, 7]),
    });
    expect(client.core.serverCid.length).toBe(6);
    expect((await client.request(Buffer.from('first'))).toString()).toBe('first');
    const before = client.localPort;
    sockets.push(await client.rebind());
    expect(client.localPort).not.toBe(before);
    expect((await client.request(Buffer.from('after rebinding'))).toString()).toBe('after rebinding');
    const peer = srv.delivered.at(-1)!.peer;
    expect(peer.port).toBe(client.localPort);
    expect(srv.delivered[0].peer).toBe(peer);
    expect(srv.listener.server.sessionCount).toBe(1);
    expect(await srv.metric('cellgate_dtls_cid_address_updates_total')).toBe(1);
  });

  it('does not move the session for an older record replayed from a new address', async () => {
    srv = await startListener({ connectionIdLength: 6 });
    client = await connectDtls('127.0.0.1', srv.port, {
      identity: 'id-dev1',
      key: Buffer.from('key-of-dev1'),
      cid: Buffer.alloc(0),
    });
    const older = client.core.record(Buffer.from('older')); // captured on the way, not delivered yet
    expect(older[0]).toBe(ContentType.tls12Cid);
    expect((await client.request(Buffer.from('newer'))).toString()).toBe('newer');
    const peer = srv.delivered.at(-1)!.peer;
    const home = peer.port;

    const attacker = await bound();
    const heard: Buffer[] = [];
    attacker.on('message', (m) => heard.push(m));
    // The older record is authentic and within the window: delivered once, but it is not the newest, so the
    // session stays where it is and the answer goes home.
    const answer = new Promise<Buffer>((resolve) => (client!.core.onData = resolve));
    client.transmit(older, attacker);
    expect((await answer).toString()).toBe('older');
    expect(peer.port).toBe(home);
    // Replaying the newest record from the new address is dropped as a replay.
    const newest = client.core.record(Buffer.from('newest'));
    client.transmit(newest);
    await until(() => srv.delivered.length === 3, 2000, 'newest');
    client.transmit(newest, attacker);
    client.transmit(older, attacker);
    await until(
      async () => (await srv.metric('cellgate_dtls_records_dropped_total', { reason: 'replay' })) === 2,
      2000,
      'replays dropped',
    );
    expect(srv.delivered.map((d) => d.data.toString())).toEqual(['newer', 'older', 'newest']);
    expect(peer.port).toBe(home);
    expect(heard).toHaveLength(0);
    expect(await srv.metric('cellgate_dtls_cid_address_updates_total')).toBe(0);
  });
});
