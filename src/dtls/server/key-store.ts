/**
 * Session keys live in shared slabs rather than a Buffer each: a small Buffer costs more in bookkeeping
 * (view, ArrayBuffer, backing store) than its 52 bytes of keys. A session holds a slot number; slots are
 * wiped when released and reused.
 */
import { VERIFY_DATA_BYTES } from '../protocol/constants.js';
import { KEY_BLOCK_LENGTH } from '../crypto/cipher-suites.js';

/** A slot: the AEAD key block, then the server's verify_data (kept to resend the last flight). */
export const SLOT_BYTES = KEY_BLOCK_LENGTH + VERIFY_DATA_BYTES;
const SHIFT = 10;
const SLOTS_PER_SLAB = 1 << SHIFT;

export class KeyStore {
  private readonly slabs: Buffer[] = [];
  private readonly free: number[] = [];
  private used = 0;

  /** A wiped slot. */
  alloc(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    const slot = this.used++;
    if (slot >> SHIFT === this.slabs.length) this.slabs.push(Buffer.alloc(SLOTS_PER_SLAB * SLOT_BYTES));
    return slot;
  }

  /** Wipes the slot and makes it available again. */
  release(slot: number): void {
    const at = this.offset(slot);
    this.slab(slot).fill(0, at, at + SLOT_BYTES);
    this.free.push(slot);
  }

  /** The buffer holding `slot`. */
  slab(slot: number): Buffer {
    return this.slabs[slot >> SHIFT];
  }

  /** Where `slot` starts in its slab. */
  offset(slot: number): number {
    return (slot & (SLOTS_PER_SLAB - 1)) * SLOT_BYTES;
  }
}
