import { describe, expect, it } from 'vitest';
import plugin, { DecodeError } from '../src/index.js';

const ctx = { deviceId: 'meter-1', path: 'up', contentFormat: undefined };
const frame = (hex: string) => Buffer.from(hex.replace(/\s+/g, ''), 'hex');

describe('water-meter codec plugin', () => {
  it('decodes a frame', () => {
    const codec = plugin.create({});
    // version 1, leak + tamper, 123456 L, 12.34 °C, 3600 mV, hourly 10 and 300 L
    const out = codec.decodeUplink(frame('01 05 0001e240 04d2 0e10 000a 012c'), ctx);
    expect(out).toEqual({
      data: {
        volume: 123456,
        unit: 'L',
        temperature: 12.34,
        batteryMv: 3600,
        alarms: ['leak', 'tamper'],
        hourly: [10, 300],
      },
    });
  });

  it('reports cubic metres, negative temperatures and a low battery when asked', () => {
    const codec = plugin.create({ unit: 'm3', lowBatteryMv: 3300 });
    const out = codec.decodeUplink(frame('01 00 0001e240 ff38 0c80'), ctx);
    expect(out).toEqual({
      data: { volume: 123.456, unit: 'm3', temperature: -2, batteryMv: 3200, alarms: [] },
      warnings: ['battery low: 3200 mV'],
    });
  });

  it('rejects frames it does not know with a DecodeError', () => {
    const codec = plugin.create({});
    expect(() => codec.decodeUplink(frame('01 00 00'), ctx)).toThrow(DecodeError);
    expect(() => codec.decodeUplink(frame('01 00 0001e240 04d2 0e10 00'), ctx)).toThrow(
      /10 bytes plus 2 per hour/,
    );
    expect(() => codec.decodeUplink(frame('02 00 0001e240 04d2 0e10'), ctx)).toThrow(
      /version 2 is not supported/,
    );
  });

  it('encodes downlink documents: desired state and commands', () => {
    const codec = plugin.create({});
    // What cellgate hands the codec for desired state { intervalMinutes: 15 }.
    expect(codec.encodeDownlink({ version: 3, desired: { intervalMinutes: 15 } })).toEqual({
      bytes: Buffer.from([1, 0, 15]),
      contentFormat: 42,
    });
    expect(codec.encodeDownlink({ commands: [{ id: 7, data: 'resetAlarms' }] }).bytes).toEqual(
      Buffer.from([2]),
    );
    expect(
      codec.encodeDownlink({
        version: 4,
        desired: { intervalMinutes: 90 },
        commands: [{ id: 8, data: { resetAlarms: true } }],
      }).bytes,
    ).toEqual(Buffer.from([1, 0, 90, 2]));
    expect(codec.encodeDownlink({}).bytes).toEqual(Buffer.alloc(0));
  });

  it('refuses downlinks the meter cannot take with a DecodeError', () => {
    const codec = plugin.create({});
    expect(() => codec.encodeDownlink({ version: 1, desired: { intervalMinutes: 0 } })).toThrow(/1 to 1440/);
    expect(() => codec.encodeDownlink({ version: 1, desired: { colour: 'red' } })).toThrow(DecodeError);
    expect(() => codec.encodeDownlink({ commands: [{ id: 9, data: 'reboot' }] })).toThrow(
      /command 9 is not "resetAlarms"/,
    );
  });

  it('refuses bad options when created', () => {
    expect(() => plugin.create({ unit: 'gal' })).toThrow(/"unit" is "L" or "m3"/);
  });
});
