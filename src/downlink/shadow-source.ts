/**
 * Shadow sources: where each thing's desired state lives. One named shadow per thing (`downlink.shadow.name`).
 * Sources answer in the IoT Data Plane's terms (`ApiError` with its status and error code), so the admin
 * API can pass their answers on unchanged, whichever source is configured.
 */
import type { ShadowState, ShadowUpdate, UpdateAnswer } from './shadow-document.js';

export interface ShadowSource {
  readonly kind: 'memory' | 'redis' | 'aws-iot';
  /** The thing's shadow, or undefined when it has none. Throws `ApiError` (e.g. 429 when throttled). */
  get(thing: string): Promise<ShadowState | undefined>;
  /** UpdateThingShadow. Throws `ApiError` (400, 409 version conflict, 413, 429, …). */
  update(thing: string, update: ShadowUpdate): Promise<UpdateAnswer>;
  /** DeleteThingShadow. Throws `ApiError` 404 when there is none. */
  delete(thing: string): Promise<{ version: number; timestamp: number }>;
  /** Calls `listener(thing)` when a thing's shadow changed (this process, or another replica via Redis). */
  onChange(listener: (thing: string) => void): void;
  close(): Promise<void>;
}
