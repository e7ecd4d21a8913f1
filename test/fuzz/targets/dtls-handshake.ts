/**
 * The DTLS server's handshake state machine (RFC 6347 §4.2, RFC 9146) driven datagram by datagram. Each case
 * builds a fresh in-process server (`test/support/dtls-harness.ts`: PSK devices, Connection IDs, caps a case
 * can reach) and plays a script from a few peers at fixed addresses: handshakes of the project's client
 * (`src/dtls/client.ts`) whose datagrams are delivered, dropped, repeated, held back, mutated, cut to some of
 * their records, given another epoch or a broken cookie; ClientHellos with a valid cookie followed by forged
 * handshake fragments (epoch 0, or epoch 1 under the peer's Connection ID); earlier datagrams sent again from
 * any address; flights of other handshakes (the corpus) and random bytes; PSK lookups that answer, fail or
 * hang; time passing (the case's own clock: retransmissions, expiry, cookie rotation). After every step: the
 * datagram handler has not thrown; handshakes, sessions and reassembly bytes are within their caps; every
 * address and Connection ID still bound names a live session; established sessions belong to registry devices,
 * never to a client without the key; all the server sent parses as DTLS records. Then an honest client from a
 * new address completes a handshake and gets its data echoed; after close nothing is bound or held, no timer
 * of the server is left, and no promise was rejected unhandled.
 */
import fc from 'fast-check';
import { parseAlert } from '../../../src/dtls/protocol/alert.js';
import { ContentType, DTLS_1_0, DTLS_1_2, HandshakeType } from '../../../src/dtls/protocol/constants.js';
import { readRecord, RecordHeader, writeRecordHeader } from '../../../src/dtls/protocol/record.js';
import type { DtlsSession } from '../../../src/dtls/server/session.js';
import { addressKey } from '../../../src/dtls/server/session-table.js';
import type { Device } from '../../../src/devices/device.js';
import type { DtlsClientCore, DtlsClientOptions } from '../../support/dtls-client.js';
import { device, DtlsHarness, type Endpoint } from '../../support/dtls-harness.js';
import {
  applyEdit,
  editArbitrary,
  hexFile,
  must,
  mutatedSeed,
  nothing,
  onlyThrows,
  randomBytes,
  type Edit,
  type FuzzTarget,
} from '../target.js';

/** Connection ID lengths: the server's (in the client's records) and the clients' (in the server's). */
const SERVER_CID_BYTES = 2;
const CLIENT_CID = Buffer.from([0xc1, 0xd2, 0xe3]);

/** Caps small enough for a case to reach them (a fragment carries up to 16 KB, four messages a handshake). */
const CONFIG = {
  connectionIdLength: SERVER_CID_BYTES,
  maxHandshakes: 3,
  maxHandshakesPerAddress: 2,
  maxSessions: 2,
  maxHandshakeMessageBytes: 16_384,
  maxReassemblyBytes: 65_536,
  // Timers and the clock move only when the script says (CaseClock): three retransmissions, then the
  // handshake fails; handshakes expire after 30 s, idle sessions after a minute, cookie secrets every 20 s.
  retransmitInitialMs: 60_000,
  retransmitMaxMs: 240_000,
  handshakeTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  cookieSecretRotationMs: 20_000,
};

/** Three peers share an IPv4 address (its handshake cap), two an IPv6 /64. */
const PEERS: readonly Endpoint[] = [
  { address: '10.0.0.1', port: 5000 },
  { address: '10.0.0.1', port: 5001 },
  { address: '10.0.0.1', port: 5002 },
  { address: '10.0.0.2', port: 5000 },
  { address: '2001:db8::1', port: 5000 },
  { address: '2001:db8::2', port: 5000 },
];
/**
 * Honest clients at the end: one from an address no peer used, then, once every handshake in progress has
 * expired, one from a peers' IPv4 address and one from their IPv6 /64 (the per-address counts are back to 0).
 */
const HONEST: readonly Endpoint[] = [
  { address: '192.0.2.1', port: 6000 },
  { address: '10.0.0.1', port: 6000 },
  { address: '2001:db8::3', port: 6000 },
];

/** Devices of the registry; `ghost` is an identity no device has. */
const DEVICES = ['dev1', 'dev2', 'dev3'];
const IDENTITIES = [...DEVICES, 'ghost'];

/** The PSK suites (no server certificate here): CCM_8, GCM, CCM, ECDHE-PSK CCM_8. */
const SUITES = [0xc0a8, 0x00a8, 0xc0a4, 0xd003];

/** How a peer's client is set up. */
export interface ClientChoice {
  identity: number;
  wrongKey: boolean;
  suite: number;
  /** 0: no connection_id extension, 1: an empty CID, 2: CLIENT_CID. */
  cid: number;
  extendedMasterSecret: boolean;
  /** Largest datagram of flight 5 (its messages fragmented), 0 for whole messages. */
  fragment: number;
  /** record_size_limit offered (flight 4 fragmented to fit it), 0 for none. */
  recordSizeLimit: number;
}

/** What happens to the next datagram a peer's client sends. */
export type Change =
  | { op: 'as-is' }
  | { op: 'drop' }
  | { op: 'twice' }
  /** Held back behind the peer's next datagram. */
  | { op: 'later' }
  | { op: 'edit'; edits: Edit[] }
  /** Every record gets this epoch. */
  | { op: 'epoch'; epoch: number }
  /** A bit of the ClientHello's cookie flipped. */
  | { op: 'cookie'; bit: number }
  /** Only the records whose bit is set in `keep` (a flight cut short). */
  | { op: 'records'; keep: number }
  /** From another peer's address and port (a NAT rebinding, or a forger). */
  | { op: 'moved'; to: number };

/** A handshake fragment built from fields, `size` bytes of `fill`. */
export interface Fragment {
  /** 0: plaintext; 1: under the Connection ID the server gave the peer's client, if any. */
  epoch: number;
  recordSeq: number;
  type: number;
  messageSeq: number;
  length: number;
  offset: number;
  size: number;
  fill: number;
}

export type Action =
  /** A new client at the peer (a device that rebooted) sends its ClientHello. */
  | { kind: 'start'; peer: number; client: ClientChoice }
  /** A new client at the peer gets as far as flight 4 (its flight 5 waits): a handshake with a valid cookie. */
  | { kind: 'cookie'; peer: number; client: ClientChoice }
  | { kind: 'deliver'; peer: number; change: Change }
  | { kind: 'fragment'; peer: number; fragment: Fragment }
  /** An earlier datagram of any client, edited, from the peer's address. */
  | { kind: 'replay'; peer: number; pick: number; edits: Edit[] }
  | { kind: 'bytes'; peer: number; bytes: Buffer }
  /** A connected client protects a record of type 23, 22 or 21 (`type` 0, 1, 2); it waits in its queue. */
  | { kind: 'data'; peer: number; type: number; bytes: Buffer }
  /** The oldest PSK lookup in progress answers, or fails. */
  | { kind: 'lookup'; fail: boolean }
  /** The server's clock moves on; its once-a-second sweep runs; its retransmission timers fire. */
  | { kind: 'clock'; seconds: number }
  | { kind: 'sweep' }
  | { kind: 'retransmit' };

export interface HandshakeCase {
  actions: Action[];
}

const PROTECTED_TYPES = [ContentType.applicationData, ContentType.handshake, ContentType.alert];
const SENT_TYPES = new Set<number>(Object.values(ContentType));

// ---------------------------------------------------------------------------------------------------------
// Datagram changes

const rec = new RecordHeader();

/** The offsets of the records of a client datagram (as far as they parse) and where the parsed part ends. */
function records(d: Buffer): { starts: number[]; end: number } {
  const starts: number[] = [];
  let off = 0;
  while (off < d.length) {
    const next = readRecord(d, off, SERVER_CID_BYTES, rec);
    if (next < 0) break;
    starts.push(off);
    off = next;
  }
  return { starts, end: off };
}

function withEpoch(d: Buffer, epoch: number): Buffer {
  const b = Buffer.from(d);
  for (const at of records(b).starts) b.writeUInt16BE(epoch, at + 3);
  return b;
}

/** The ClientHello with one cookie bit flipped (a hello without a cookie is left as it is). */
function withCookieBit(d: Buffer, bit: number): Buffer {
  const b = Buffer.from(d);
  // record header, handshake header, client_version, random
  let p = 13 + 12 + 2 + 32;
  if (b[0] !== ContentType.handshake || b[13] !== HandshakeType.clientHello || p >= b.length) return b;
  p += 1 + b[p];
  const n = p < b.length ? b[p] : 0;
  if (n > 0 && p + n < b.length) b[p + 1 + ((bit >> 3) % n)] ^= 1 << (bit & 7);
  return b;
}

function someRecords(d: Buffer, keep: number): Buffer {
  const { starts, end } = records(d);
  const parts = starts
    .map((at, i) => d.subarray(at, i + 1 < starts.length ? starts[i + 1] : end))
    .filter((_, i) => (keep >> i) & 1);
  return Buffer.concat([...parts, d.subarray(end)]);
}

function fragmentRecord(f: Fragment, cid: string): Buffer {
  const body = Buffer.alloc(12 + f.size, f.fill);
  body[0] = f.type;
  body.writeUIntBE(f.length, 1, 3);
  body.writeUInt16BE(f.messageSeq, 4);
  body.writeUIntBE(f.offset, 6, 3);
  body.writeUIntBE(f.size, 9, 3);
  const epoch = f.epoch > 0 ? 1 : 0;
  const id = epoch === 1 ? cid : '';
  const type = id !== '' ? ContentType.tls12Cid : ContentType.handshake;
  const out = Buffer.alloc(13 + id.length + body.length);
  body.copy(out, writeRecordHeader(out, 0, type, DTLS_1_2, epoch, f.recordSeq, id, body.length));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// The case's clock: the server's time and timers are the script's

/**
 * The clock of a case. `Date.now` runs `offset` ahead of the real clock, and the script moves it on; timers
 * armed from the server's code (`src/dtls/server/`) are recorded until cleared or fired, and the script fires
 * the one-shot ones (flight retransmissions) when it likes, so the server's time-driven paths (retransmission,
 * handshake and idle expiry, cookie secret rotation) come within a case of a few milliseconds. Other timers
 * (the clients', the runner's) are left alone.
 */
class CaseClock {
  /** The server's timers not yet cleared or fired (intervals too), and how to fire the one-shot ones. */
  readonly live = new Map<NodeJS.Timeout, (() => void) | undefined>();
  private offset = 0;
  private readonly real = { setTimeout, setInterval, clearTimeout, clearInterval, now: Date.now };

  install(): void {
    const { live, real } = this;
    const fromServer = (): boolean => new Error().stack?.includes('/src/dtls/server/') ?? false;
    globalThis.setTimeout = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      if (!fromServer()) return real.setTimeout(fn, ms, ...args);
      const run = (...a: unknown[]): void => {
        live.delete(t);
        fn(...a);
      };
      const t = real.setTimeout(run, ms, ...args);
      live.set(t, () => {
        real.clearTimeout(t);
        run(...args);
      });
      return t;
    }) as typeof setTimeout;
    globalThis.setInterval = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = real.setInterval(fn, ms, ...args);
      if (fromServer()) live.set(t, undefined);
      return t;
    }) as typeof setInterval;
    globalThis.clearTimeout = ((t?: NodeJS.Timeout) => {
      if (t) live.delete(t);
      real.clearTimeout(t);
    }) as typeof clearTimeout;
    globalThis.clearInterval = ((t?: NodeJS.Timeout) => {
      if (t) live.delete(t);
      real.clearInterval(t);
    }) as typeof clearInterval;
    Date.now = () => real.now() + this.offset;
  }

  advance(seconds: number): void {
    this.offset += seconds * 1000;
  }

  /** Fires the server's one-shot timers armed so far (not those they arm in turn). */
  fire(): void {
    for (const fire of [...this.live.values()]) fire?.();
  }

  uninstall(): void {
    const { now, ...timers } = this.real;
    Object.assign(globalThis, timers);
    Date.now = now;
  }
}

/** Lets every datagram in flight (microtasks) and every answered lookup run to its end. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

// ---------------------------------------------------------------------------------------------------------
// One case

interface PeerState {
  readonly at: Endpoint;
  client?: DtlsClientCore;
  /** Whether that client holds a device's identity and key. */
  entitled?: boolean;
  /** Datagrams its clients sent that have not been delivered. */
  queue: Buffer[];
}

interface PendingLookup {
  answer(): void;
  fail(): void;
}

function clientOptions(c: ClientChoice): Partial<DtlsClientOptions> & { device: string } {
  const cid = [undefined, Buffer.alloc(0), CLIENT_CID][c.cid % 3];
  return {
    device: IDENTITIES[c.identity % IDENTITIES.length],
    ...(c.wrongKey ? { key: Buffer.from('not the key') } : {}),
    cipherSuites: [SUITES[c.suite % SUITES.length]],
    ...(cid ? { cid } : {}),
    extendedMasterSecret: c.extendedMasterSecret,
    ...(c.fragment > 0 ? { maxDatagramBytes: c.fragment } : {}),
    ...(c.recordSizeLimit > 0 ? { recordSizeLimit: c.recordSizeLimit } : {}),
    retransmitMs: 60_000,
  };
}

const HONEST_CLIENT: ClientChoice = {
  identity: 0,
  wrongKey: false,
  suite: 0,
  cid: 2,
  extendedMasterSecret: true,
  fragment: 0,
  recordSizeLimit: 0,
};

class Run {
  readonly h: DtlsHarness;
  readonly peers: PeerState[] = PEERS.map((at) => ({ at, queue: [] }));
  readonly honest: PeerState[] = HONEST.map((at) => ({ at, queue: [] }));
  /** Every datagram a client sent, for replays and splices. */
  readonly history: Buffer[] = [];
  /** Connection IDs the server gave out. */
  readonly cids = new Set<string>();
  private readonly lookups: PendingLookup[] = [];
  private answerAtOnce = false;
  private checkedSent = 0;
  private closed = false;

  constructor(private readonly clock: CaseClock) {
    const devices = DEVICES.map((id) => device(id));
    this.h = new DtlsHarness(CONFIG, devices, (id) => this.lookup(id));
    this.h.drop = (dir, d, at) => dir === 'to-server' && this.capture(d, at);
  }

  private lookup(identity: string): Promise<Device | undefined> {
    const found = this.h.registry.byPskIdentitySync(identity);
    if (this.answerAtOnce) return Promise.resolve(found);
    return new Promise((resolve, reject) =>
      this.lookups.push({
        answer: () => resolve(found),
        fail: () => reject(new Error('registry unavailable')),
      }),
    );
  }

  /** A client's datagram waits in its peer's queue: the script delivers it. */
  private capture(d: Buffer, at: Endpoint): boolean {
    const peer = [...this.peers, ...this.honest].find(
      (p) => p.at.address === at.address && p.at.port === at.port,
    );
    peer?.queue.push(d);
    this.history.push(d);
    return true;
  }

  private feed(d: Buffer, at: Endpoint): void {
    onlyThrows(() => this.h.server.receive(d, at.address, at.port), nothing, 'DtlsServer.receive');
  }

  private start(peer: PeerState, choice: ClientChoice): DtlsClientCore {
    peer.client?.stop('closed');
    const c = this.h.client(clientOptions(choice), peer.at.address, peer.at.port);
    peer.client = c;
    peer.entitled = !choice.wrongKey && choice.identity % IDENTITIES.length < DEVICES.length;
    c.handshake().catch(() => undefined);
    return c;
  }

  private deliver(peer: PeerState, change: Change): void {
    const d = peer.queue.shift();
    if (!d) return;
    switch (change.op) {
      case 'as-is':
        return this.feed(d, peer.at);
      case 'drop':
        return;
      case 'twice':
        this.feed(d, peer.at);
        return this.feed(d, peer.at);
      case 'later':
        peer.queue.splice(1, 0, d);
        return;
      case 'edit':
        return this.feed(this.edited(d, change.edits), peer.at);
      case 'epoch':
        return this.feed(withEpoch(d, change.epoch), peer.at);
      case 'cookie':
        return this.feed(withCookieBit(d, change.bit), peer.at);
      case 'records':
        return this.feed(someRecords(d, change.keep), peer.at);
      case 'moved':
        return this.feed(d, PEERS[change.to % PEERS.length]);
    }
  }

  /** A copy of `d` with the edits; a splice takes its tail from any datagram a client sent. */
  private edited(d: Buffer, edits: readonly Edit[]): Buffer {
    let b: Buffer = Buffer.from(d);
    for (const e of edits) b = applyEdit(b, e, this.history);
    return b;
  }

  /** A new client's ClientHello and its ClientHello with the cookie, delivered as they are. */
  private async cookie(peer: PeerState, choice: ClientChoice): Promise<void> {
    peer.queue = [];
    this.start(peer, choice);
    this.deliver(peer, { op: 'as-is' });
    await settle();
    this.deliver(peer, { op: 'as-is' });
  }

  /** A record the peer's connected client protects, queued like what it sends. */
  private data(peer: PeerState, type: number, bytes: Buffer): void {
    const c = peer.client;
    if (c?.phase !== 'connected') return;
    const record = c.record(bytes, PROTECTED_TYPES[type % PROTECTED_TYPES.length]);
    peer.queue.push(record);
    this.history.push(record);
  }

  async act(a: Action): Promise<void> {
    const peer = this.peers['peer' in a ? a.peer % this.peers.length : 0];
    switch (a.kind) {
      case 'start':
        this.start(peer, a.client);
        break;
      case 'cookie':
        await this.cookie(peer, a.client);
        break;
      case 'deliver':
        this.deliver(peer, a.change);
        break;
      case 'fragment':
        this.feed(fragmentRecord(a.fragment, peer.client?.serverCid ?? ''), peer.at);
        break;
      case 'replay':
        if (this.history.length > 0)
          this.feed(this.edited(this.history[a.pick % this.history.length], a.edits), peer.at);
        break;
      case 'bytes':
        this.feed(a.bytes, peer.at);
        break;
      case 'data':
        this.data(peer, a.type, a.bytes);
        break;
      case 'lookup': {
        const l = this.lookups.shift();
        if (a.fail) l?.fail();
        else l?.answer();
        break;
      }
      case 'clock':
        this.clock.advance(a.seconds);
        break;
      case 'sweep':
        onlyThrows(() => this.h.server.sweep(), nothing, 'DtlsServer.sweep');
        break;
      case 'retransmit':
        onlyThrows(() => this.clock.fire(), nothing, 'a retransmission timer');
    }
    await settle();
    await this.checkState();
  }

  /** The invariants that hold between any two steps. */
  async checkState(): Promise<void> {
    const server = this.h.server;
    must(server.handshakeCount <= CONFIG.maxHandshakes, `${server.handshakeCount} handshakes in progress`);
    must(server.sessionCount <= CONFIG.maxSessions, `${server.sessionCount} sessions`);
    const held = await this.reassemblyBytes();
    must(held >= 0 && held <= CONFIG.maxReassemblyBytes, `${held} bytes held for reassembly`);
    for (const p of [...this.peers, ...this.honest]) {
      if (p.client?.serverCid) this.cids.add(p.client.serverCid);
      must(p.client?.phase !== 'connected' || p.entitled === true, 'a client without the key got a session');
      const s = server.table.byAddress(addressKey(p.at.address, p.at.port));
      if (s) must(live(s), `${p.at.address}/${p.at.port} is bound to a session that ended`);
    }
    for (const cid of this.cids) {
      const s = server.table.byCid(cid);
      if (s) must(live(s), 'a Connection ID is bound to a session that ended');
    }
    for (const s of server.table.byActivity()) {
      must(s.hs === null && s.keySlot >= 0, 'an established session has keys and no handshake');
      must(DEVICES.includes(s.deviceId ?? ''), `a session for ${s.deviceId}, no device of the registry`);
    }
    this.checkSent();
  }

  private async reassemblyBytes(): Promise<number> {
    const gauge = this.h.metrics.getSingleMetric('cellgate_dtls_reassembly_bytes');
    return (await gauge?.get())?.values[0]?.value ?? 0;
  }

  /** Everything the server sent since the last look parses as DTLS 1.2 records (epoch 0 or 1). */
  private checkSent(): void {
    const sent = this.h.sent;
    for (; this.checkedSent < sent.length; this.checkedSent++) {
      const d = sent[this.checkedSent].datagram;
      must(d.length > 0, 'the server sent an empty datagram');
      for (let off = 0; off < d.length;) {
        const next = readRecord(d, off, CLIENT_CID.length, rec);
        must(next > off, `the server sent bytes that are no DTLS records: ${d.toString('hex')}`);
        must(
          SENT_TYPES.has(rec.type) && rec.epoch <= 1,
          `a sent record of type ${rec.type}, epoch ${rec.epoch}`,
        );
        // DTLS 1.0 only for the HelloVerifyRequest (RFC 6347 §4.2.1).
        must(rec.version === DTLS_1_2 || (rec.version === DTLS_1_0 && rec.epoch === 0), 'record version');
        if (rec.epoch === 0 && rec.type === ContentType.alert)
          must(parseAlert(d.subarray(rec.bodyOffset, next)) !== undefined, 'a plaintext alert parses');
        off = next;
      }
    }
  }

  /**
   * After the hostile input the lookups answer, and an honest client from a new address gets in and is served.
   * Then every handshake still in progress expires, and honest clients from the peers' own addresses get in.
   */
  async honestClients(): Promise<void> {
    this.answerAtOnce = true;
    for (const l of this.lookups.splice(0)) l.answer();
    await settle();
    const [fresh, ...neighbours] = this.honest;
    await this.honestClient(fresh, 0);
    this.clock.advance(CONFIG.handshakeTimeoutMs / 1000 + 1);
    onlyThrows(() => this.h.server.sweep(), nothing, 'DtlsServer.sweep');
    for (const [i, p] of neighbours.entries()) await this.honestClient(p, i + 1);
  }

  private async honestClient(peer: PeerState, identity: number): Promise<void> {
    const c = this.start(peer, { ...HONEST_CLIENT, identity });
    const from = `${peer.at.address}/${peer.at.port}`;
    for (let i = 0; i < 8 && c.phase !== 'connected' && peer.queue.length > 0; i++) {
      this.deliver(peer, { op: 'as-is' });
      await settle();
    }
    must(c.phase === 'connected', `an honest client from ${from}: ${c.phase}, alerts [${c.alerts}]`);
    c.write(Buffer.from('still served'));
    this.deliver(peer, { op: 'as-is' });
    await settle();
    must(
      c.received.some((b) => b.toString() === 'still served'),
      `the honest client from ${from} gets its data echoed`,
    );
    await this.checkState();
  }

  /** Closes the server: nothing stays bound or held. */
  async close(): Promise<void> {
    this.closed = true;
    await this.h.close();
    this.stopClients();
    await settle();
    const server = this.h.server;
    must(server.handshakeCount === 0 && server.sessionCount === 0, 'handshakes or sessions left after close');
    must((await this.reassemblyBytes()) === 0, 'reassembly bytes held after close');
    for (const p of [...this.peers, ...this.honest])
      must(!server.table.byAddress(addressKey(p.at.address, p.at.port)), 'an address bound after close');
    for (const cid of this.cids) must(!server.table.byCid(cid), 'a Connection ID bound after close');
    this.checkSent();
  }

  private stopClients(): void {
    for (const p of [...this.peers, ...this.honest]) p.client?.stop('closed');
  }

  /** Whatever a failed check left: the server closed (and with it the harness's cap reporter), the clients stopped. */
  async dispose(): Promise<void> {
    if (!this.closed) await this.h.close();
    this.stopClients();
  }
}

function live(s: DtlsSession): boolean {
  return s.hs !== null || s.keySlot >= 0;
}

async function checkCase({ actions }: HandshakeCase): Promise<void> {
  const clock = new CaseClock();
  const rejections: unknown[] = [];
  const onRejection = (reason: unknown): void => void rejections.push(reason);
  process.on('unhandledRejection', onRejection);
  clock.install();
  const run = new Run(clock);
  try {
    for (const a of actions) await run.act(a);
    await run.honestClients();
    await run.close();
    await settle();
    must(clock.live.size === 0, `${clock.live.size} timer(s) of the server left after close`);
    must(rejections.length === 0, `unhandled rejection: ${String(rejections[0])}`);
  } finally {
    await run.dispose();
    clock.uninstall();
    process.off('unhandledRejection', onRejection);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Generation

const peerArbitrary = fc.nat(PEERS.length - 1);

const clientArbitrary: fc.Arbitrary<ClientChoice> = fc.record({
  identity: fc.oneof(
    { weight: 6, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.nat(IDENTITIES.length - 1) },
  ),
  wrongKey: fc.oneof(
    { weight: 8, arbitrary: fc.constant(false) },
    { weight: 1, arbitrary: fc.constant(true) },
  ),
  suite: fc.nat(SUITES.length - 1),
  cid: fc.oneof({ weight: 3, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.nat(2) }),
  extendedMasterSecret: fc.oneof(
    { weight: 4, arbitrary: fc.constant(true) },
    { weight: 1, arbitrary: fc.constant(false) },
  ),
  fragment: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 60, max: 200 }) },
  ),
  recordSizeLimit: fc.oneof(
    { weight: 4, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 64, max: 300 }) },
  ),
});

const changeArbitrary: fc.Arbitrary<Change> = fc.oneof(
  { weight: 12, arbitrary: fc.constant({ op: 'as-is' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'twice' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'later' as const }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('edit' as const),
      edits: fc.array(editArbitrary, { minLength: 1, maxLength: 4 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('epoch' as const), epoch: fc.oneof(fc.nat(2), fc.nat(0xffff)) }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('cookie' as const), bit: fc.nat(127) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('records' as const), keep: fc.nat(15) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('moved' as const), to: fc.nat(PEERS.length - 1) }) },
);

const HANDSHAKE_TYPES = [
  HandshakeType.clientHello,
  HandshakeType.certificate,
  HandshakeType.clientKeyExchange,
  HandshakeType.certificateVerify,
  HandshakeType.finished,
];

const fragmentArbitrary: fc.Arbitrary<Fragment> = fc.record({
  epoch: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(1) }),
  recordSeq: fc.nat(64),
  type: fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...HANDSHAKE_TYPES) },
    { weight: 1, arbitrary: fc.nat(255) },
  ),
  messageSeq: fc.nat(7),
  length: fc.oneof(fc.nat(300), fc.integer({ min: 1000, max: 20_000 }), fc.constant(0xffffff)),
  offset: fc.oneof({ weight: 2, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.nat(20_000) }),
  size: fc.oneof(
    { weight: 3, arbitrary: fc.nat(300) },
    { weight: 1, arbitrary: fc.integer({ min: 1000, max: 16_384 }) },
  ),
  fill: fc.nat(255),
});

const deliver = (peer: number, change: Change): Action => ({ kind: 'deliver', peer, change });

/** (a) A handshake of the real client, each of its datagrams changed or not, its lookup answered or not. */
const clientHandshake: fc.Arbitrary<Action[]> = fc
  .record({
    peer: peerArbitrary,
    client: clientArbitrary,
    changes: fc.array(changeArbitrary, { minLength: 2, maxLength: 8 }),
    lookup: fc.constantFrom('answer', 'answer', 'answer', 'fail', 'hang'),
    data: fc.option(fc.record({ type: fc.nat(2), bytes: randomBytes(24) }), { nil: undefined }),
  })
  .map(({ peer, client, changes, lookup, data }) => {
    const steps: Action[] = [{ kind: 'start', peer, client }];
    changes.forEach((change, i) => {
      steps.push(deliver(peer, change));
      if (i === 2 && lookup !== 'hang') steps.push({ kind: 'lookup', fail: lookup === 'fail' });
    });
    if (data) steps.push({ kind: 'data', peer, ...data }, deliver(peer, { op: 'as-is' }));
    return steps;
  });

/** (b) A ClientHello with a valid cookie, then forged fragments (and the real flight 5 now and then). */
const forgedFlight: fc.Arbitrary<Action[]> = fc
  .record({
    peer: peerArbitrary,
    client: clientArbitrary,
    steps: fc.array(
      fc.oneof(
        { weight: 4, arbitrary: fragmentArbitrary.map((fragment) => ({ fragment })) },
        { weight: 1, arbitrary: changeArbitrary.map((change) => ({ change })) },
        { weight: 1, arbitrary: fc.boolean().map((fail) => ({ fail })) },
      ),
      { minLength: 1, maxLength: 6 },
    ),
  })
  .map(({ peer, client, steps }) => [
    { kind: 'cookie', peer, client } as Action,
    ...steps.map((s): Action => {
      if ('fragment' in s) return { kind: 'fragment', peer, fragment: s.fragment };
      if ('change' in s) return deliver(peer, s.change);
      return { kind: 'lookup', fail: s.fail };
    }),
  ]);

/** (c) Bytes: random, or flights of other handshakes (the corpus) mutated; and datagrams sent again. */
function strayDatagrams(stale: readonly Buffer[]): fc.Arbitrary<Action[]> {
  return fc.oneof(
    fc
      .record({ peer: peerArbitrary, bytes: fc.oneof(randomBytes(200), mutatedSeed(stale, 4)) })
      .map(({ peer, bytes }): Action[] => [{ kind: 'bytes', peer, bytes }]),
    fc
      .record({ peer: peerArbitrary, pick: fc.nat(), edits: fc.array(editArbitrary, { maxLength: 3 }) })
      .map(({ peer, pick, edits }): Action[] => [{ kind: 'replay', peer, pick, edits }]),
    fc.constant<Action[]>([{ kind: 'sweep' }]),
  );
}

/** Time: the clock moves on (past the retransmission, handshake, idle and cookie times), timers fire, a sweep. */
const timePasses: fc.Arbitrary<Action[]> = fc
  .record({ seconds: fc.integer({ min: 1, max: 90 }), retransmit: fc.boolean(), sweep: fc.boolean() })
  .map(({ seconds, retransmit, sweep }) => [
    { kind: 'clock', seconds },
    ...(retransmit ? [{ kind: 'retransmit' } as const] : []),
    ...(sweep ? [{ kind: 'sweep' } as const] : []),
  ]);

/** Segments interleaved: `picks` say whose next action comes next (in order once they run out). */
function interleave(segments: Action[][], picks: readonly number[]): Action[] {
  const lanes = segments.map((s) => [...s]);
  const out: Action[] = [];
  let i = 0;
  for (
    let open = lanes.filter((l) => l.length > 0);
    open.length > 0;
    open = open.filter((l) => l.length > 0)
  ) {
    const lane = i < picks.length ? open[picks[i++] % open.length] : open[0];
    out.push(lane.shift() as Action);
  }
  return out;
}

function caseArbitrary(
  stale: readonly Buffer[],
  seeds: readonly HandshakeCase[],
): fc.Arbitrary<HandshakeCase> {
  const segment = fc.oneof(
    { weight: 3, arbitrary: clientHandshake },
    { weight: 2, arbitrary: forgedFlight },
    { weight: 2, arbitrary: strayDatagrams(stale) },
    { weight: 1, arbitrary: timePasses },
  );
  const base = seeds.length > 0 ? fc.constantFrom(...seeds.map((s) => s.actions)) : fc.constant<Action[]>([]);
  return fc
    .record({
      seed: fc.oneof({ weight: 3, arbitrary: fc.constant<Action[]>([]) }, { weight: 1, arbitrary: base }),
      segments: fc.array(segment, { minLength: 1, maxLength: 4 }),
      picks: fc.array(fc.nat(), { maxLength: 40 }),
    })
    .map(({ seed, segments, picks }) => ({ actions: interleave([seed, ...segments], picks) }));
}

/** JSON seeds spell buffers as hex strings under the key `bytes` (as failure reports print them, or bare). */
function parseCase(text: string): HandshakeCase {
  return JSON.parse(text, (key, v: unknown) =>
    key === 'bytes' && typeof v === 'string' ? Buffer.from(v.replace(/^hex:/, ''), 'hex') : v,
  ) as HandshakeCase;
}

export const dtlsHandshake: FuzzTarget<HandshakeCase> = {
  name: 'dtls-handshake',
  description:
    'DtlsServer fed scripted datagrams from hostile peers: no throw, caps, live bindings, parsable output, an honest client still served',
  async: true,
  shortRuns: 250,
  seed: (file, name) =>
    name.endsWith('.hex')
      ? { actions: [{ kind: 'bytes', peer: 0, bytes: hexFile(file) }] }
      : parseCase(file.toString()),
  arbitrary: (seeds) => {
    // The captured flights (one `bytes` action each) are mutated; the scripts are played before new segments.
    const stale = seeds.flatMap(({ actions: [a, ...more] }) =>
      a?.kind === 'bytes' && !more.length ? [a.bytes] : [],
    );
    const scripts = seeds.filter((s) => s.actions.length > 1);
    return fc.oneof(
      { weight: 1, arbitrary: fc.constantFrom(...seeds) },
      { weight: 8, arbitrary: caseArbitrary(stale, scripts) },
    );
  },
  check: checkCase,
};
