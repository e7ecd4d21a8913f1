import { describe, expect, it } from 'vitest';
import jsonPlugin from '../../codecs/json/index.js';
import { DecodeError } from '../../src/codecs/codec.js';
import { downlink, FIXTURES, uplink } from './support.js';

const codec = () => jsonPlugin.create({}, { baseDir: FIXTURES });

describe('json codec', () => {
  it('decodes a JSON text (RFC 8259), with or without a byte order mark', async () => {
    const c = await codec();
    const doc = { temp: 21.5, ok: true, tags: ['a', null], n: { m: 1 } };
    expect(await c.decodeUplink(Buffer.from(JSON.stringify(doc)), uplink())).toEqual({ data: doc });
    expect(await c.decodeUplink(Buffer.from('\ufeff42'), uplink())).toEqual({ data: 42 });
  });

  it('accepts 64 levels of nesting and refuses more (the envelope is serialised again)', async () => {
    const c = await codec();
    const ok = `${'['.repeat(64)}${']'.repeat(64)}`;
    expect(await c.decodeUplink(Buffer.from(ok), uplink())).toBeDefined();
    const deep = `${'[{"a":'.repeat(40)}1${'}]'.repeat(40)}`;
    expect(() => c.decodeUplink(Buffer.from(deep), uplink())).toThrow(/nested deeper than 64 levels/);
    // Brackets inside strings do not count.
    const quoted = JSON.stringify({ s: '['.repeat(100), e: '\\"[[[' });
    expect(await c.decodeUplink(Buffer.from(quoted), uplink())).toEqual({ data: JSON.parse(quoted) });
  });

  it('rejects empty payloads, bad UTF-8 and bad JSON with a DecodeError', async () => {
    const c = await codec();
    const cases: [Buffer, RegExp][] = [
      [Buffer.alloc(0), /JSON: empty payload/],
      [Buffer.from([0x22, 0xc3, 0x28, 0x22]), /JSON: payload is not valid UTF-8/],
      [Buffer.from('{"a":'), /^JSON: /],
      [Buffer.from("{'a':1}"), /^JSON: /],
    ];
    for (const [bytes, message] of cases) {
      expect(() => c.decodeUplink(bytes, uplink())).toThrow(DecodeError);
      expect(() => c.decodeUplink(bytes, uplink())).toThrow(message);
    }
  });

  it('encodes downlinks as JSON (Content-Format 50)', async () => {
    const c = await codec();
    const out = await c.encodeDownlink?.({ interval: 60, mode: 'eco' }, downlink());
    expect(out?.contentFormat).toBe(50);
    expect(out?.bytes.toString()).toBe('{"interval":60,"mode":"eco"}');
    expect(() => c.encodeDownlink?.({ n: 1n }, downlink())).toThrow(/cannot encode as JSON/);
    expect(() => c.encodeDownlink?.(undefined, downlink())).toThrow(/no JSON form/);
  });
});
