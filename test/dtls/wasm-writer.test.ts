import { describe, expect, it } from 'vitest';
import { FunctionBuilder, I32, ModuleBuilder, V128 } from '../../src/dtls/crypto/wasm-writer.js';

interface Wasm {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

function instantiate(mod: ModuleBuilder): Record<string, unknown> {
  const bytes = mod.bytes();
  expect(wasm.validate(bytes)).toBe(true);
  return new wasm.Instance(new wasm.Module(bytes)).exports;
}

describe('WebAssembly module writer', () => {
  it('encodes i32 constants of every LEB128 length, signed', () => {
    const values = [
      0, 1, -1, 63, 64, -64, -65, 127, 128, 8191, 8192, 624485, -123456, 0x7fffffff, -0x80000000,
    ];
    const mod = new ModuleBuilder(1);
    values.forEach((v, i) => mod.add(new FunctionBuilder([], [I32]).i32(v), `c${i}`));
    const e = instantiate(mod) as Record<string, () => number>;
    values.forEach((v, i) => expect(e[`c${i}`]()).toBe(v));
  });

  it('runs loops, branches and locals (sum of 1…n)', () => {
    const f = new FunctionBuilder([I32], [I32]);
    const acc = f.local(I32);
    f.block().loop();
    f.get(0).i32Eqz().brIf(1);
    f.get(acc).get(0).i32Add().set(acc);
    f.get(0).i32(1).i32Sub().set(0);
    f.br(0).end().end();
    f.get(acc);
    const mod = new ModuleBuilder(1);
    mod.add(f, 'sum');
    const sum = instantiate(mod).sum as (n: number) => number;
    expect([0, 1, 10, 1000].map(sum)).toEqual([0, 1, 55, 500500]);
  });

  it('places data segments and runs vector loads, shuffles, swizzles and stores on memory', () => {
    const f = new FunctionBuilder([], []);
    const v = f.local(V128);
    // Byte-reverse the 16 bytes at 32 into 64 with a shuffle, and look them up in the table at 0 into 96.
    f.i32(0)
      .load(32)
      .tee(v)
      .get(v)
      .shuffle(Array.from({ length: 16 }, (_, i) => 15 - i))
      .set(v);
    f.i32(64).get(v).store();
    f.i32(96)
      .i32(0)
      .load(0)
      .get(v)
      .swizzle()
      .i32(0)
      .load(16)
      .get(v)
      .splat8(0x10)
      .xor()
      .swizzle()
      .or()
      .store();
    const mod = new ModuleBuilder(1);
    mod.addData(
      0,
      Uint8Array.from({ length: 32 }, (_, i) => 200 + i),
    );
    mod.addData(32, Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 31, 40]));
    mod.add(f, 'run');
    const e = instantiate(mod) as { run(): void; memory: { buffer: ArrayBuffer } };
    e.run();
    const mem = Buffer.from(e.memory.buffer);
    expect([...mem.subarray(64, 80)]).toEqual([40, 31, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0]);
    // Indices 0–31 find the table; 40 is out of both halves and gives 0.
    expect([...mem.subarray(96, 112)]).toEqual([
      0, 231, 221, 220, 219, 218, 217, 216, 207, 206, 205, 204, 203, 202, 201, 200,
    ]);
  });
});
