import { describe, expect, it } from 'vitest';
import { compileTopic } from '../../src/publish/topic.js';

describe('topic templates', () => {
  it('fills {thing}, {deviceId}, {path} and {pskIdentity}', () => {
    const t = compileTopic('dt/{thing}/{deviceId}/{pskIdentity}/{path}');
    expect(t({ thing: 'th', deviceId: 'dev', path: 'a/b', pskIdentity: 'psk-1' })).toBe(
      'dt/th/dev/psk-1/a/b',
    );
    expect(t({ thing: 'th', deviceId: 'dev', path: '' })).toBe('dt/th/dev/_/_');
  });

  it('keeps MQTT wildcards and NUL out of the values', () => {
    const t = compileTopic('cellgate/{thing}/{path}');
    expect(t({ thing: 'th', deviceId: 'd', path: 'a+b/#/c\u0000' })).toBe('cellgate/th/a_b/_/c_');
  });

  it('refuses unknown placeholders', () => {
    expect(() => compileTopic('x/{device}')).toThrow(/unknown topic placeholder \{device\}/);
  });
});
