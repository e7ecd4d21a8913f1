/**
 * A FIFO queue as a growable ring buffer: `push` at the tail and `shift` from the head are O(1) and allocate
 * nothing once the ring is large enough. `requeue` puts items back at the head in their order (a batch that
 * must be tried again before newer work), `drain` empties the queue in one go, `retain` drops the items a
 * predicate rejects without disturbing the order of the rest, and `insert` places an item among the others
 * (the deadline queue keeps its entries sorted with it).
 *
 * Every queue and insertion-order index in the gateway is one of these: caches pop evicted or expired entries
 * from the head instead of iterating a Map from the front, which V8 makes slow once many entries were deleted
 * there, and no queue pays for `Array.prototype.shift` moving the whole array. The capacity is a power of two
 * and doubles when full; it stays at its peak (bounded by the caller's cap) until `clear`.
 */
export class Fifo<T> {
  private items: (T | undefined)[];
  /** Capacity - 1 (the capacity is a power of two). */
  private mask: number;
  private head = 0;
  private count = 0;
  private readonly initialCapacity: number;

  constructor(initialCapacity = 16) {
    let capacity = 4;
    while (capacity < initialCapacity) capacity *= 2;
    this.initialCapacity = capacity;
    this.items = new Array<T | undefined>(capacity);
    this.mask = capacity - 1;
  }

  get length(): number {
    return this.count;
  }

  /** Slots currently allocated. */
  get capacity(): number {
    return this.mask + 1;
  }

  push(item: T): void {
    if (this.count > this.mask) this.grow(this.count + 1);
    this.items[(this.head + this.count) & this.mask] = item;
    this.count++;
  }

  /** The oldest item, left in place. */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.items[this.head];
  }

  /** The item `index` places behind the head (0: the head); undefined past the end. */
  at(index: number): T | undefined {
    return index >= 0 && index < this.count ? this.items[(this.head + index) & this.mask] : undefined;
  }

  /** Takes the oldest item. */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) & this.mask;
    this.count--;
    return item;
  }

  /** Puts `items` back at the head, in their order: `items[0]` is the next to be taken. */
  requeue(items: readonly T[]): void {
    const n = items.length;
    if (n === 0) return;
    if (this.count + n > this.mask + 1) this.grow(this.count + n);
    for (let i = n - 1; i >= 0; i--) {
      this.head = (this.head - 1) & this.mask;
      this.items[this.head] = items[i];
    }
    this.count += n;
  }

  /**
   * Inserts `item` so that it becomes item number `index` (0: the head, `length`: the tail). The items after
   * it move one place back: O(length - index).
   */
  insert(index: number, item: T): void {
    if (index < 0 || index > this.count) throw new RangeError(`index ${index} outside 0..${this.count}`);
    if (this.count > this.mask) this.grow(this.count + 1);
    const items = this.items;
    const mask = this.mask;
    for (let i = this.count; i > index; i--)
      items[(this.head + i) & mask] = items[(this.head + i - 1) & mask];
    items[(this.head + index) & mask] = item;
    this.count++;
  }

  /** Takes every item, oldest first. */
  drain(): T[] {
    const out = new Array<T>(this.count);
    for (let i = 0; i < out.length; i++) out[i] = this.shift() as T;
    return out;
  }

  /** Keeps the items `keep` accepts, in their order; returns how many were dropped. O(length). */
  retain(keep: (item: T) => boolean): number {
    const items = this.items;
    const mask = this.mask;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const item = items[(this.head + i) & mask] as T;
      if (keep(item)) items[(this.head + kept++) & mask] = item;
    }
    for (let i = kept; i < this.count; i++) items[(this.head + i) & mask] = undefined;
    const dropped = this.count - kept;
    this.count = kept;
    return dropped;
  }

  /** Drops every item and gives back the memory of a ring that grew. */
  clear(): void {
    this.items = new Array<T | undefined>(this.initialCapacity);
    this.mask = this.initialCapacity - 1;
    this.head = 0;
    this.count = 0;
  }

  /** The items, oldest first (the queue must not change while iterating). */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.count; i++) yield this.items[(this.head + i) & this.mask] as T;
  }

  private grow(needed: number): void {
    let capacity = (this.mask + 1) * 2;
    while (capacity < needed) capacity *= 2;
    const next = new Array<T | undefined>(capacity);
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) & this.mask];
    this.items = next;
    this.mask = capacity - 1;
    this.head = 0;
  }
}
