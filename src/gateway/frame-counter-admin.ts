/**
 * Admin API for raw UDP frame counters, on the HTTP side port with the admin API's authentication:
 *
 *   GET    /devices/{deviceId}/frame-counter   → {"deviceId": …, "counter": 1234}   (null: none kept)
 *   DELETE /devices/{deviceId}/frame-counter   → {"deviceId": …, "reset": true}     the explicit reset
 *
 * After a reset the device's next uplink is taken whatever its counter (a device whose counting restarted:
 * new firmware, a replaced modem). Re-provisioning (the device removed from the device file, or its
 * credentials changed) resets it too.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeviceRegistry } from '../devices/registry.js';
import type { AdminAuth } from '../ops/admin-auth.js';
import { json, type HttpSidePort } from '../ops/http.js';
import type { Logger } from '../ops/logger.js';
import type { FrameCounterStore } from '../state/frame-counters.js';

const PREFIX = '/devices/';
const RESOURCE = 'frame-counter';

export function mountFrameCounterAdmin(
  http: HttpSidePort,
  auth: AdminAuth,
  counters: FrameCounterStore,
  registry: DeviceRegistry,
  log: Logger,
): void {
  http.route(PREFIX, (req, res, url) => handle(req, res, url, auth, counters, registry, log));
}

async function handle(
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  auth: AdminAuth,
  counters: FrameCounterStore,
  registry: DeviceRegistry,
  log: Logger,
): Promise<void> {
  const body = await drain(req);
  const allowed = auth.check(req, body);
  if (!allowed.ok) return json(res, allowed.status, { message: allowed.message });
  const parts = url.pathname.split('/'); // ['', 'devices', id, 'frame-counter']
  if (parts.length !== 4 || parts[3] !== RESOURCE) return json(res, 404, { message: 'not found' });
  let id: string;
  try {
    id = decodeURIComponent(parts[2]);
  } catch {
    return json(res, 400, { message: 'invalid device id' });
  }
  if (registry.get(id) === undefined) return json(res, 404, { message: `no device ${id}` });
  if (req.method === 'GET')
    return json(res, 200, { deviceId: id, counter: (await counters.get(id)) ?? null });
  if (req.method === 'DELETE') {
    const reset = await counters.reset(id);
    log.info({ deviceId: id, had: reset }, 'frame counter reset by the admin API');
    return json(res, 200, { deviceId: id, reset });
  }
  json(res, 405, { message: `${req.method} is not allowed here (GET, DELETE)` });
}

function drain(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= 4096) chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}
