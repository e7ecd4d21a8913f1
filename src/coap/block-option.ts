/** The Block1 / Block2 option value (RFC 7959 §2.2): NUM | M | SZX. */
export interface BlockValue {
  num: number;
  more: boolean;
  /** Size exponent 0-6: block size = 2 ** (szx + 4). 7 is reserved (BERT, RFC 8323). */
  szx: number;
}

export function decodeBlock(v: number): BlockValue {
  return { num: Math.floor(v / 16), more: (v & 0x08) !== 0, szx: v & 0x07 };
}

export function encodeBlock(num: number, more: boolean, szx: number): number {
  return num * 16 + (more ? 8 : 0) + szx;
}

export function blockSize(szx: number): number {
  return 1 << (szx + 4);
}

/** The largest SZX whose block size is at most `bytes` (16 ≤ bytes ≤ 1024). */
export function szxForSize(bytes: number): number {
  let szx = 6;
  while (szx > 0 && blockSize(szx) > bytes) szx--;
  return szx;
}
