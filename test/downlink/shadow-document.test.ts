import { thrown } from '../support/api-error.js';
import { describe, expect, it } from 'vitest';
import {
  applyShadowUpdate,
  parseShadowUpdate,
  shadowAnswer,
  shadowDelta,
  shadowFromAnswer,
  type ShadowState,
} from '../../src/downlink/shadow-document.js';

const body = (v: unknown) => Buffer.from(JSON.stringify(v));
const update = (v: unknown) => parseShadowUpdate(body(v));

describe('shadow documents', () => {
  it('delta: desired fields that differ from reported, nested objects field by field, arrays whole', () => {
    expect(
      shadowDelta(
        { a: 1, b: { x: 1, y: 2 }, c: [1, 2], d: 'same', e: { z: 1 } },
        { a: 2, b: { x: 1, y: 3 }, c: [1, 2, 3], d: 'same', e: { z: 1 } },
      ),
    ).toEqual({ a: 1, b: { y: 2 }, c: [1, 2] });
    expect(shadowDelta({ a: { b: 1 } }, undefined)).toEqual({ a: { b: 1 } });
    expect(shadowDelta({ a: { b: 1 } }, { a: 5 })).toEqual({ a: { b: 1 } });
    expect(shadowDelta(undefined, { a: 1 })).toEqual({});
    expect(shadowDelta({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual({});
  });

  it('updates merge, null deletes a field, arrays are replaced whole, every update bumps the version', () => {
    let s: ShadowState | undefined;
    let r = applyShadowUpdate(
      s,
      0,
      update({ state: { desired: { a: 1, b: { x: 1 }, c: [1, 2] } } }),
      100,
      8192,
    );
    s = r.next;
    expect(s.version).toBe(1);
    expect(r.answer).toMatchObject({
      version: 1,
      timestamp: 100,
      metadata: { desired: { a: { timestamp: 100 } } },
    });
    r = applyShadowUpdate(s, 0, update({ state: { desired: { a: null, b: { y: 2 }, c: [3] } } }), 200, 8192);
    s = r.next;
    expect(s.desired).toEqual({ b: { x: 1, y: 2 }, c: [3] });
    expect(s.metadata?.desired).toEqual({
      b: { x: { timestamp: 100 }, y: { timestamp: 200 } },
      c: [{ timestamp: 200 }],
    });
    r = applyShadowUpdate(s, 0, update({ state: { reported: { c: [3] } }, clientToken: 'tok' }), 300, 8192);
    expect(r.next.version).toBe(3);
    expect(r.answer.clientToken).toBe('tok');
    expect(shadowAnswer(r.next, 400)).toEqual({
      state: { desired: { b: { x: 1, y: 2 }, c: [3] }, reported: { c: [3] }, delta: { b: { x: 1, y: 2 } } },
      metadata: {
        desired: { b: { x: { timestamp: 100 }, y: { timestamp: 200 } }, c: [{ timestamp: 200 }] },
        reported: { c: [{ timestamp: 300 }] },
      },
      version: 3,
      timestamp: 400,
    });
    // state: null removes both sections.
    r = applyShadowUpdate(r.next, 0, update({ state: null }), 500, 8192);
    expect(r.next.desired).toBeUndefined();
    expect(r.next.reported).toBeUndefined();
    expect(r.next.version).toBe(4);
  });

  it('a version that is not the current one is a 409 conflict; a deleted shadow carries its version on', () => {
    const { next } = applyShadowUpdate(undefined, 0, update({ state: { desired: { a: 1 } } }), 1, 8192);
    const e = thrown(() =>
      applyShadowUpdate(next, 0, update({ state: { desired: { a: 2 } }, version: 7 }), 2, 8192),
    );
    expect([e.status, e.code]).toEqual([409, 'ConflictException']);
    expect(
      applyShadowUpdate(next, 0, update({ state: { desired: { a: 2 } }, version: 1 }), 2, 8192).next.version,
    ).toBe(2);
    // After a delete at version 5, the next shadow is version 6.
    expect(
      applyShadowUpdate(undefined, 5, update({ state: { desired: { a: 1 } } }), 3, 8192).next.version,
    ).toBe(6);
  });

  it('refuses a state larger than the limit with 413', () => {
    const e = thrown(() =>
      applyShadowUpdate(undefined, 0, update({ state: { desired: { big: 'x'.repeat(9000) } } }), 1, 8192),
    );
    expect([e.status, e.code]).toEqual([413, 'RequestEntityTooLargeException']);
  });

  it.each([
    ['not JSON', Buffer.from('{nope'), 400, 'Invalid JSON'],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 415, 'UTF-8'],
    ['an array', body([1]), 400, 'Invalid JSON'],
    ['no state', body({ version: 1 }), 400, 'Missing required node: state'],
    ['state not an object', body({ state: 5 }), 400, 'State node must be an object'],
    ['an unknown section', body({ state: { wanted: {} } }), 400, 'invalid node'],
    ['desired not an object', body({ state: { desired: [1] } }), 400, 'Desired node must be an object'],
    ['an unknown top-level node', body({ state: {}, extra: 1 }), 400, 'Unexpected node'],
    ['a negative version', body({ state: {}, version: -1 }), 400, 'Invalid version'],
    ['a long clientToken', body({ state: {}, clientToken: 'x'.repeat(65) }), 400, 'Invalid clientToken'],
    [
      'seven levels of nesting',
      body({ state: { desired: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } } }),
      400,
      'too many levels',
    ],
    ['a __proto__ field', Buffer.from('{"state":{"desired":{"__proto__":{"x":1}}}}'), 400, '__proto__'],
  ])('rejects %s', (_name, raw, status, message) => {
    const e = thrown(() => parseShadowUpdate(raw));
    expect(e.status).toBe(status);
    expect(e.message).toContain(message);
  });

  it('refuses nesting thousands of levels deep with the same 400 (found by fuzzing: it overflowed the stack)', () => {
    for (const [open, close] of [
      ['[', ']'],
      ['{"x":', '}'],
    ]) {
      const raw = Buffer.from(`{"state":{"desired":{"a":${open.repeat(20_000)}1${close.repeat(20_000)}}}}`);
      const e = thrown(() => parseShadowUpdate(raw));
      expect(e.status).toBe(400);
      expect(e.message).toContain('too many levels');
    }
  });

  it('a field that held a value and becomes an object keeps no stale metadata (found by fuzzing)', () => {
    const first = applyShadowUpdate(undefined, 0, update({ state: { reported: { fw: 0 } } }), 100, 8192).next;
    const { next } = applyShadowUpdate(
      first,
      1,
      update({ state: { reported: { fw: { v: '1.2' } } } }),
      200,
      8192,
    );
    expect(next.reported).toEqual({ fw: { v: '1.2' } });
    expect(next.metadata?.reported).toEqual({ fw: { v: { timestamp: 200 } } });
  });

  it('six levels of nesting are accepted', () => {
    expect(() => update({ state: { desired: { a: { b: { c: { d: { e: { f: 1 } } } } } } } })).not.toThrow();
  });

  it('reads a GetThingShadow answer back', () => {
    const s = shadowFromAnswer({
      state: { desired: { a: 1 }, reported: { a: 0 }, delta: { a: 1 } },
      metadata: { desired: { a: { timestamp: 5 } } },
      version: 9,
      timestamp: 10,
    });
    expect(s).toEqual({
      desired: { a: 1 },
      reported: { a: 0 },
      metadata: { desired: { a: { timestamp: 5 } }, reported: undefined },
      version: 9,
      timestamp: 10,
    });
    expect(thrown(() => shadowFromAnswer({ state: {} })).status).toBe(502);
  });
});
