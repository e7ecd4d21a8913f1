import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../../src/publish/group-commit.js';
import { PublishError } from '../../src/publish/publisher.js';

describe('group commit', () => {
  it('sends what arrives during a write together in the next one, and answers each after its write', async () => {
    const writes: string[][] = [];
    let release: () => void = () => {};
    const gc = new GroupCommit(async (batch) => {
      writes.push(batch.map((b) => b.toString()));
      await new Promise<void>((r) => (release = r));
      return null;
    }, 10);
    const done: string[] = [];
    gc.add(Buffer.from('a'), () => done.push('a'));
    gc.add(Buffer.from('bbbb'), () => done.push('b'));
    gc.add(Buffer.from('cccccc'), () => done.push('c'));
    gc.add(Buffer.from('dddddddd'), () => done.push('d'));
    expect(writes).toEqual([['a']]);
    expect(gc.pendingBytes).toBe(18);
    release();
    await new Promise((r) => setImmediate(r));
    expect(done).toEqual(['a']);
    expect(writes[1]).toEqual(['bbbb', 'cccccc']); // up to 10 bytes per write
    release();
    await new Promise((r) => setImmediate(r));
    expect(writes[2]).toEqual(['dddddddd']);
    release();
    await gc.idle();
    expect(done).toEqual(['a', 'b', 'c', 'd']);
  });

  it('hands a failed write’s error to every callback of its batch', async () => {
    const err = new PublishError('disk full', 7);
    const gc = new GroupCommit(() => Promise.resolve(err));
    const got = await Promise.all([1, 2].map((i) => new Promise((r) => gc.add(Buffer.from(String(i)), r))));
    expect(got).toEqual([err, err]);
    expect(gc.failPending(err)).toBe(0);
  });
});
