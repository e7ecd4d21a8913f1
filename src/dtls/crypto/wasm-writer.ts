/**
 * A small writer of WebAssembly binary modules (WebAssembly Core Specification 2.0, §5): one memory, functions
 * over i32 and v128 values, exports and data segments. It knows only the instructions the AES code uses; the
 * module is built in memory at start-up, so no binary and no build step ships with the project.
 */

/** Value types (§5.3.1). */
export const I32 = 0x7f;
export const V128 = 0x7b;
type ValueType = typeof I32 | typeof V128;

function uleb(n: number, out: number[]): void {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
}

function sleb(n: number, out: number[]): void {
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

function name(s: string, out: number[]): void {
  const bytes = Buffer.from(s, 'utf8');
  uleb(bytes.length, out);
  for (const b of bytes) out.push(b);
}

function section(id: number, body: number[], out: number[]): void {
  out.push(id);
  uleb(body.length, out);
  for (const b of body) out.push(b);
}

/** The body of one function: typed instruction helpers append to its code. */
export class FunctionBuilder {
  readonly code: number[] = [];
  private readonly locals: ValueType[] = [];

  constructor(
    readonly params: readonly ValueType[],
    readonly results: readonly ValueType[],
  ) {}

  /** A new local of `type`; returns its index (parameters come first). */
  local(type: ValueType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }

  /** Local declarations as the code section wants them: runs of one type. */
  localDeclarations(out: number[]): void {
    const runs: [number, ValueType][] = [];
    for (const t of this.locals) {
      const last = runs[runs.length - 1];
      if (last && last[1] === t) last[0]++;
      else runs.push([1, t]);
    }
    uleb(runs.length, out);
    for (const [n, t] of runs) {
      uleb(n, out);
      out.push(t);
    }
  }

  /** An opcode, with an unsigned LEB128 immediate when given. */
  private op(code: number, immediate?: number): this {
    this.code.push(code);
    if (immediate !== undefined) uleb(immediate, this.code);
    return this;
  }

  // Control (§5.4.1). Blocks and loops take no values and leave none (block type 0x40).
  block(): this {
    return this.op(0x02).op(0x40);
  }
  loop(): this {
    return this.op(0x03).op(0x40);
  }
  end(): this {
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, depth);
  }
  brIf(depth: number): this {
    return this.op(0x0d, depth);
  }

  // Variables (§5.4.4).
  get(i: number): this {
    return this.op(0x20, i);
  }
  set(i: number): this {
    return this.op(0x21, i);
  }
  tee(i: number): this {
    return this.op(0x22, i);
  }

  // Numeric (§5.4.7).
  i32(n: number): this {
    this.code.push(0x41);
    sleb(n | 0, this.code);
    return this;
  }
  i32Eqz(): this {
    return this.op(0x45);
  }
  i32LtU(): this {
    return this.op(0x49);
  }
  i32Add(): this {
    return this.op(0x6a);
  }
  i32Sub(): this {
    return this.op(0x6b);
  }

  // Vector instructions (§5.4.8): prefix 0xfd and an unsigned LEB128 opcode.
  private simd(op: number): this {
    return this.op(0xfd, op);
  }
  /** v128.load with a static byte offset from the address on the stack (alignment hint 16). */
  load(offset = 0): this {
    return this.simd(0x00).op(4, offset);
  }
  /** v128.store: address, then value. */
  store(offset = 0): this {
    return this.simd(0x0b).op(4, offset);
  }
  /** v128.const of 16 bytes. */
  v128(bytes: ArrayLike<number>): this {
    if (bytes.length !== 16) throw new Error('v128.const takes 16 bytes');
    this.simd(0x0c);
    for (let i = 0; i < 16; i++) this.code.push(bytes[i] & 0xff);
    return this;
  }
  /** v128.const with every byte `b`. */
  splat8(b: number): this {
    return this.v128(new Array<number>(16).fill(b));
  }
  /** i8x16.shuffle: lane i of the result is byte lanes[i] of the two operands concatenated (0–31). */
  shuffle(lanes: readonly number[]): this {
    if (lanes.length !== 16 || lanes.some((l) => l < 0 || l > 31)) throw new Error('bad shuffle lanes');
    this.simd(0x0d);
    for (const l of lanes) this.code.push(l);
    return this;
  }
  /** i8x16.swizzle: lane i is table[index[i]], or 0 when that index is 16 or more. */
  swizzle(): this {
    return this.simd(0x0e);
  }
  i8x16LtS(): this {
    return this.simd(0x25);
  }
  and(): this {
    return this.simd(0x4e);
  }
  or(): this {
    return this.simd(0x50);
  }
  xor(): this {
    return this.simd(0x51);
  }
  i8x16Add(): this {
    return this.simd(0x6e);
  }
}

interface Export {
  name: string;
  fn: FunctionBuilder;
}

/** A module with one exported memory of `pages` 64 KiB pages. */
export class ModuleBuilder {
  private readonly functions: FunctionBuilder[] = [];
  private readonly exports: Export[] = [];
  private readonly data: { offset: number; bytes: Uint8Array }[] = [];

  constructor(private readonly pages: number) {}

  /** Adds a function, exported under `exportName` when given. */
  add(fn: FunctionBuilder, exportName?: string): FunctionBuilder {
    this.functions.push(fn);
    if (exportName !== undefined) this.exports.push({ name: exportName, fn });
    return fn;
  }

  /** Bytes placed in memory at `offset` when the module is instantiated. */
  addData(offset: number, bytes: Uint8Array): void {
    this.data.push({ offset, bytes });
  }

  bytes(): Uint8Array {
    const out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
    // One type per function (a few functions: no need to share them).
    const types: number[] = [];
    uleb(this.functions.length, types);
    for (const f of this.functions) {
      types.push(0x60);
      uleb(f.params.length, types);
      for (const t of f.params) types.push(t);
      uleb(f.results.length, types);
      for (const t of f.results) types.push(t);
    }
    section(1, types, out);
    const funcs: number[] = [];
    uleb(this.functions.length, funcs);
    this.functions.forEach((_, i) => uleb(i, funcs));
    section(3, funcs, out);
    const memory: number[] = [1, 0x00];
    uleb(this.pages, memory);
    section(5, memory, out);
    const exports: number[] = [];
    uleb(this.exports.length + 1, exports);
    name('memory', exports);
    exports.push(0x02, 0x00);
    for (const e of this.exports) {
      name(e.name, exports);
      exports.push(0x00);
      uleb(this.functions.indexOf(e.fn), exports);
    }
    section(7, exports, out);
    const code: number[] = [];
    uleb(this.functions.length, code);
    for (const f of this.functions) {
      const body: number[] = [];
      f.localDeclarations(body);
      for (const b of f.code) body.push(b);
      body.push(0x0b);
      uleb(body.length, code);
      for (const b of body) code.push(b);
    }
    section(10, code, out);
    const data: number[] = [];
    uleb(this.data.length, data);
    for (const d of this.data) {
      data.push(0x00, 0x41);
      sleb(d.offset, data);
      data.push(0x0b);
      uleb(d.bytes.length, data);
      for (const b of d.bytes) data.push(b);
    }
    section(11, data, out);
    return Uint8Array.from(out);
  }
}
