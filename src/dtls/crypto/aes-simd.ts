/**
 * AES-128 (FIPS 197) in WebAssembly SIMD, for CCM: one call expands a key, then another runs a CBC-MAC over
 * some blocks and encrypts other blocks (CTR counter blocks) in place, the two interleaved so the processor
 * overlaps them. It replaces a native cipher object per record, whose creation costs Node more than the
 * cipher work, and it needs no per-key state at all, so its cost does not grow with the number of sessions.
 *
 * Constant time: SubBytes is sixteen 16-byte table lookups (`i8x16.swizzle`) over the whole S-box, each
 * masked to the lanes whose high nibble selects that table; every lookup touches every table, so neither
 * memory access nor branch depends on key or data. ShiftRows and the rotations of MixColumns are constant
 * shuffles, xtime is an add and a masked xor.
 *
 * Memory (one module per process): the S-box, the round keys, the key, the MAC, and two areas for the blocks
 * of one record. The key and round keys are wiped after each record.
 */
import { FunctionBuilder, I32, ModuleBuilder, V128 } from './wasm-writer.js';

const SBOX = 0;
export const ROUND_KEYS = 256;
/** Where the caller puts the key before `expand()`. */
export const KEY = 448;
/** Where `run` leaves the CBC-MAC. */
export const MAC = 464;
const PAGE = 65536;
/** Where the CBC-MAC input goes (B0, encoded additional data, message), up to AREA_BYTES. */
export const MAC_AREA = PAGE;
/** Where the counter blocks go; encrypted in place. */
export const CTR_AREA = 2 * PAGE;
export const AREA_BYTES = PAGE;

/** The AES S-box, computed: multiplicative inverse in GF(2^8), then the affine map (FIPS 197 §5.1.1). */
export function sbox(): Uint8Array {
  const s = new Uint8Array(256);
  let p = 1;
  let q = 1;
  do {
    // p runs over the powers of 3, q over those of its inverse (3^-1 = 0xf6).
    p = p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0);
    q ^= q << 1;
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const r = (x: number, n: number) => ((x << n) | (x >> (8 - n))) & 0xff;
    s[p] = q ^ r(q, 1) ^ r(q, 2) ^ r(q, 3) ^ r(q, 4) ^ 0x63;
  } while (p !== 1);
  s[0] = 0x63;
  return s;
}

const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
/** ShiftRows: the state is column-major (byte 4c+r is row r of column c); row r moves left by r. */
const SHIFT_ROWS = range(16, (i) => 4 * (((i >> 2) + (i & 3)) & 3) + (i & 3));
/** Each column's bytes rotated up by one and by two rows. */
const ROT1 = range(16, (i) => (i & ~3) + (((i & 3) + 1) & 3));
const ROT2 = range(16, (i) => (i & ~3) + (((i & 3) + 2) & 3));
/** RotWord of the last word, in every word. */
const ROT_LAST_WORD = range(16, (i) => 12 + (((i & 3) + 1) & 3));
/** The words of the second operand moved up by one or two words, zeros (first operand) shifted in. */
const WORDS_UP_1 = range(16, (i) => (i < 4 ? i : 12 + i));
const WORDS_UP_2 = range(16, (i) => (i < 8 ? i : 8 + i));
const RCON = [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x1b, 0x36];

/** SubBytes of local `x`, left on the stack. */
function subBytes(f: FunctionBuilder, x: number): void {
  f.i32(0).load(SBOX).get(x).swizzle();
  for (let h = 1; h < 16; h++)
    f.i32(0)
      .load(SBOX + 16 * h)
      .get(x)
      .splat8(h << 4)
      .xor()
      .swizzle()
      .or();
}

/**
 * The ten rounds of AES-128 on the states in locals `states` (round key 0 already added), each step emitted
 * for every state in turn so that independent states overlap. `t` holds one temporary per state.
 */
function rounds(f: FunctionBuilder, states: number[], t: number[]): void {
  for (let r = 1; r <= 10; r++) {
    for (const s of states) f.get(s).get(s).shuffle(SHIFT_ROWS).set(s);
    for (const s of states) {
      subBytes(f, s);
      f.set(s);
    }
    if (r < 10) {
      states.forEach((s, k) => {
        const u = t[k];
        // t = a ^ rot1(a); b = a ^ t ^ rot2(t) ^ xtime(t)
        f.get(s).get(s).shuffle(ROT1).get(s).xor().tee(u);
        f.get(u).shuffle(ROT2).get(u).xor().get(s).xor();
        f.get(u).get(u).i8x16Add().get(u).splat8(0).i8x16LtS().splat8(0x1b).and().xor();
        f.xor().set(s);
      });
    }
    for (const s of states)
      f.get(s)
        .i32(0)
        .load(ROUND_KEYS + 16 * r)
        .xor()
        .set(s);
  }
}

/** `expand()`: the round keys of the key at KEY. */
function expand(): FunctionBuilder {
  const f = new FunctionBuilder([], []);
  const p = f.local(V128);
  const t = f.local(V128);
  const x = f.local(V128);
  f.i32(0).i32(0).load(KEY).tee(p).store(ROUND_KEYS);
  for (let i = 1; i <= 10; i++) {
    f.get(p).get(p).shuffle(ROT_LAST_WORD).set(t);
    subBytes(f, t);
    f.v128(range(16, (j) => (j & 3 ? 0 : RCON[i - 1])))
      .xor()
      .set(t);
    f.splat8(0).get(p).shuffle(WORDS_UP_1).get(p).xor().tee(x);
    f.splat8(0).get(x).shuffle(WORDS_UP_2).xor();
    f.set(p);
    f.i32(0)
      .get(p)
      .get(t)
      .xor()
      .tee(p)
      .store(ROUND_KEYS + 16 * i);
  }
  return f;
}

/**
 * `run(macBlocks, ctrBlocks, wipe)`: the CBC-MAC (IV 0) of `macBlocks` blocks at MAC_AREA into MAC, and
 * `ctrBlocks` blocks at CTR_AREA encrypted in place; with `wipe` non-zero, the key and round keys are zeroed.
 */
function run(): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32, I32], []);
  const [m, c, wipe] = [0, 1, 2];
  const mp = f.local(I32);
  const cp = f.local(I32);
  const mac = f.local(V128);
  const ctr = f.local(V128);
  const ctr2 = f.local(V128);
  const t = [f.local(V128), f.local(V128)];
  const addKey = (s: number) => f.get(s).i32(0).load(ROUND_KEYS).xor().set(s);
  const loadMac = () => {
    f.get(mac).get(mp).load().xor().set(mac);
    addKey(mac);
  };
  const loadCtr = (s: number, offset: number) => {
    f.get(cp).load(offset).set(s);
    addKey(s);
  };
  const storeCtr = (s: number, offset: number) => f.get(cp).get(s).store(offset);
  const step = (local: number, by: number) => f.get(local).i32(by).i32Add().set(local);
  const count = (local: number, by: number) => f.get(local).i32(by).i32Sub().set(local);

  f.i32(MAC_AREA).set(mp).i32(CTR_AREA).set(cp).splat8(0).set(mac);
  // MAC and counter blocks side by side while both remain.
  f.block().loop();
  f.get(m).i32Eqz().brIf(1).get(c).i32Eqz().brIf(1);
  loadMac();
  loadCtr(ctr, 0);
  rounds(f, [mac, ctr], t);
  storeCtr(ctr, 0);
  step(mp, 16);
  step(cp, 16);
  count(m, 1);
  count(c, 1);
  f.br(0).end().end();
  // The rest of the MAC.
  f.block().loop();
  f.get(m).i32Eqz().brIf(1);
  loadMac();
  rounds(f, [mac], t);
  step(mp, 16);
  count(m, 1);
  f.br(0).end().end();
  // The rest of the counter blocks, two at a time, then one.
  f.block().loop();
  f.get(c).i32(2).i32LtU().brIf(1);
  loadCtr(ctr, 0);
  loadCtr(ctr2, 16);
  rounds(f, [ctr, ctr2], t);
  storeCtr(ctr, 0);
  storeCtr(ctr2, 16);
  step(cp, 32);
  count(c, 2);
  f.br(0).end().end();
  f.block();
  f.get(c).i32Eqz().brIf(0);
  loadCtr(ctr, 0);
  rounds(f, [ctr], t);
  storeCtr(ctr, 0);
  f.end();
  f.i32(0).get(mac).store(MAC);
  f.block();
  f.get(wipe).i32Eqz().brIf(0);
  for (let o = ROUND_KEYS; o < KEY + 16; o += 16) f.i32(0).splat8(0).store(o);
  f.end();
  return f;
}

export interface AesSimd {
  /** The module's memory: the key goes at KEY, blocks in the two areas, the MAC comes out at MAC. */
  readonly memory: Buffer;
  expand(): void;
  run(macBlocks: number, ctrBlocks: number, wipe: number): void;
}

/** The part of the WebAssembly JS API used here (the project's type libraries do not declare it). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}

/** A compiled instance, or undefined where WebAssembly SIMD is not available. */
export function loadAesSimd(): AesSimd | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined) return undefined;
  const mod = new ModuleBuilder(3);
  mod.addData(SBOX, sbox());
  mod.add(expand(), 'expand');
  mod.add(run(), 'run');
  const bytes = mod.bytes();
  if (!wasm.validate(bytes)) return undefined;
  const e = new wasm.Instance(new wasm.Module(bytes)).exports as {
    memory: { buffer: ArrayBuffer };
    expand(): void;
    run(m: number, c: number, w: number): void;
  };
  return { memory: Buffer.from(e.memory.buffer), expand: e.expand, run: e.run };
}

/** The process's instance (the CCM code and its tests share it), or undefined without WebAssembly SIMD. */
export const aesSimd = loadAesSimd();
