/**
 * A cellgate codec plugin for a (fictional) water meter, as a template to copy.
 *
 * Uplink frame, big-endian:
 *
 *   byte 0      version, 1
 *   byte 1      flags: bit 0 leak, bit 1 backflow, bit 2 tamper, bit 7 battery low
 *   bytes 2-5   meter reading, litres (uint32)
 *   bytes 6-7   water temperature, 0.01 °C (int16)
 *   bytes 8-9   battery, mV (uint16)
 *   bytes 10-   optional: litres used in each past hour, oldest first (uint16 each)
 *
 * Downlinks: cellgate hands `encodeDownlink` the downlink document, `{ version?, desired?, commands? }`
 * (docs/codec-plugins.md). This meter takes desired state `{ "intervalMinutes": 1..1440 }` → 01 hi lo, and the
 * command `"resetAlarms"` (or `{ "resetAlarms": true }`) → 02; a document carrying both becomes 01 hi lo 02.
 *
 * The plugin imports nothing from cellgate: the types below match cellgate's codec interface structurally,
 * and a decode error is any Error whose name is "DecodeError".
 */

/** What cellgate tells the codec about an uplink (a subset of its UplinkContext). */
export interface UplinkContext {
  readonly deviceId: string;
  readonly path: string;
  readonly contentFormat: number | undefined;
  /** When the gateway received the uplink, ms since the epoch. */
  readonly receivedAt?: number;
}

export interface DecodeOutput {
  readonly data: unknown;
  readonly warnings?: readonly string[];
}

export interface EncodeOutput {
  readonly bytes: Buffer;
  readonly contentFormat?: number;
}

/** What cellgate hands `encodeDownlink`: the downlink document the device has pending. */
export interface DownlinkDocument {
  /** Shadow version of `desired` (present with `desired`). */
  readonly version?: number;
  /** Desired state that differs from what the device reported. */
  readonly desired?: Readonly<Record<string, unknown>>;
  /** Queued commands, oldest first. */
  readonly commands?: readonly { readonly id: number; readonly data: unknown }[];
}

export interface Codec {
  readonly name: string;
  decodeUplink(bytes: Buffer, ctx: UplinkContext): DecodeOutput;
  encodeDownlink(doc: DownlinkDocument): EncodeOutput;
}

/** The payload is not a frame of this meter: the uplink is published with `decodeError` set to the message. */
export class DecodeError extends Error {
  override readonly name = 'DecodeError';
}

export interface WaterMeterOptions {
  /** Unit of `volume` in the decoded JSON: litres (default) or cubic metres. */
  readonly unit?: 'L' | 'm3';
  /** Below this battery voltage (mV) the decoder adds a warning. */
  readonly lowBatteryMv?: number;
}

const ALARMS: readonly [number, string][] = [
  [0x01, 'leak'],
  [0x02, 'backflow'],
  [0x04, 'tamper'],
];

function options(raw: Readonly<Record<string, unknown>>): Required<WaterMeterOptions> {
  const unit = raw.unit ?? 'L';
  if (unit !== 'L' && unit !== 'm3') throw new Error('water-meter: option "unit" is "L" or "m3"');
  const lowBatteryMv = raw.lowBatteryMv ?? 3100;
  if (typeof lowBatteryMv !== 'number' || lowBatteryMv < 0)
    throw new Error('water-meter: option "lowBatteryMv" is a number of millivolts');
  return { unit, lowBatteryMv };
}

export function createWaterMeter(raw: Readonly<Record<string, unknown>> = {}): Codec {
  const o = options(raw);
  return {
    name: 'water-meter',
    decodeUplink(bytes: Buffer): DecodeOutput {
      if (bytes.length < 10 || (bytes.length - 10) % 2 !== 0)
        throw new DecodeError(`water-meter: a frame is 10 bytes plus 2 per hour, not ${bytes.length}`);
      if (bytes[0] !== 1) throw new DecodeError(`water-meter: frame version ${bytes[0]} is not supported`);
      const flags = bytes[1];
      const litres = bytes.readUInt32BE(2);
      const batteryMv = bytes.readUInt16BE(8);
      const hourly: number[] = [];
      for (let i = 10; i < bytes.length; i += 2) hourly.push(bytes.readUInt16BE(i));
      const warnings: string[] = [];
      if (flags & 0x80 || batteryMv < o.lowBatteryMv) warnings.push(`battery low: ${batteryMv} mV`);
      const data = {
        volume: o.unit === 'L' ? litres : litres / 1000,
        unit: o.unit,
        temperature: bytes.readInt16BE(6) / 100,
        batteryMv,
        alarms: ALARMS.filter(([bit]) => flags & bit).map(([, name]) => name),
        ...(hourly.length ? { hourly } : {}),
      };
      return warnings.length ? { data, warnings } : { data };
    },
    encodeDownlink(doc: DownlinkDocument): EncodeOutput {
      const frames: Buffer[] = [];
      for (const [field, value] of Object.entries(doc.desired ?? {})) {
        if (field !== 'intervalMinutes')
          throw new DecodeError(`water-meter: desired state "${field}" is not a setting of this meter`);
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 1440)
          throw new DecodeError('water-meter: intervalMinutes is a whole number from 1 to 1440');
        frames.push(Buffer.from([0x01, value >> 8, value & 0xff]));
      }
      for (const command of doc.commands ?? []) {
        const d = command.data as { resetAlarms?: unknown } | string | null;
        if (d === 'resetAlarms' || (typeof d === 'object' && d?.resetAlarms === true))
          frames.push(Buffer.from([0x02]));
        else throw new DecodeError(`water-meter: command ${command.id} is not "resetAlarms"`);
      }
      return { bytes: Buffer.concat(frames), contentFormat: 42 };
    },
  };
}

/** The plugin: cellgate imports the module and calls `create` with the options from devices.yaml. */
const plugin = {
  name: 'water-meter',
  description: 'water meter frames (example plugin)',
  create: (raw: Readonly<Record<string, unknown>>) => createWaterMeter(raw),
};
export default plugin;
