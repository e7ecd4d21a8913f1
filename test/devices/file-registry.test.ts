/** Reading the device file: key encodings, defaults, and errors naming the entry and key at fault. */
import { describe, expect, it } from 'vitest';
import { DeviceFileError, readDeviceFile } from '../../src/devices/file-registry.js';
import { tempFile as file } from '../support/temp-file.js';

describe('device file', () => {
  it('reads devices with keys in hex, base64 and text, thing defaulting to id', () => {
    const p = file(
      'devices.yaml',
      [
        '- id: a',
        '  psk: { identity: a, key: "hex:73656372657450534b" }',
        '- id: b',
        '  thing: thing-b',
        '  psk: { identity: ib, key: "base64:c2VjcmV0UFNL" }',
        '- id: c',
        '  psk: { identity: ic, key: "text:secretPSK" }',
        '  codec: { name: cbor }',
        '  ip: [10.0.0.1, "::1"]',
      ].join('\n'),
    );
    const d = readDeviceFile(p);
    expect(d.map((x) => x.thing)).toEqual(['a', 'thing-b', 'c']);
    expect(d.every((x) => x.psk?.key.equals(Buffer.from('secretPSK')))).toBe(true);
    expect(d[2].ips).toEqual(['10.0.0.1', '::1']);
  });

  it('names the entry and key at fault', () => {
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  psk: { identity: a, key: "hex:zz" }\n'))).toThrow(
      /device #1 \(id "a"\): psk\.key: hex key is not hex/,
    );
    expect(() =>
      readDeviceFile(file('d.yaml', '- id: a\n- id: b\n  psk: { identity: x, key: "plain" }\n')),
    ).toThrow(/device #2 \(id "b"\): psk\.key/);
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  ip: 999.1.1.1\n'))).toThrow(
      /device #1 \(id "a"\): ip: not an IP address/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  thing: "bad thing"\n'))).toThrow(
      /device #1 \(id "a"\): thing/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- thing: x\n'))).toThrow(
      /device #1 \(no id\): id: missing \(expected string\)/,
    );
    expect(() => readDeviceFile(file('d.yaml', '- id: a\n  psk: { identity: a, key: "hex:abc" }\n'))).toThrow(
      /even number of hex digits/,
    );
  });

  it('marks a device file it refuses CELLGATE_DEVICE_FILE_INVALID', () => {
    for (const text of ['- id: a\n  ip: 999.1.1.1\n', 'not: a list\n', '- [unclosed\n'])
      expect(() => readDeviceFile(file('d.yaml', text))).toThrow(
        expect.objectContaining({ name: 'DeviceFileError', code: 'CELLGATE_DEVICE_FILE_INVALID' }),
      );
    expect(() => readDeviceFile('/nonexistent/devices.yaml')).toThrow(DeviceFileError);
  });
});
