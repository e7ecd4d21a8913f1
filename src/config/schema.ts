/**
 * The gateway's configuration: one typed schema with documented defaults. Each area keeps its section in a
 * file of its own in this folder; `docs/configuration.md` is generated from this schema.
 */
import { z } from 'zod';
import { coapSchema } from './coap.js';
import { devicesSchema } from './devices.js';
import { downloadsSchema } from './downloads.js';
import { httpSchema } from './http.js';
import { logSchema } from './log.js';
import { adminSchema } from './admin.js';
import { downlinkSchema } from './downlink.js';
import { codecsSchema } from './codecs.js';
import { dtlsSchema } from './dtls.js';
import { publisherSchema } from './publisher.js';
import { runtimeSchema } from './runtime.js';
import { shutdownSchema } from './shutdown.js';
import { checkStateUse, foldStateInput, stateSchema } from './state.js';
import { radiusSchema, udpSchema } from './udp.js';

/** The sections, as documented (docs/configuration.md, the Helm values schema). */
export const configShape = z.strictObject({
  coap: coapSchema,
  dtls: dtlsSchema,
  http: httpSchema,
  devices: devicesSchema,
  publisher: publisherSchema,
  codecs: codecsSchema,
  downloads: downloadsSchema,
  udp: udpSchema,
  radius: radiusSchema,
  downlink: downlinkSchema,
  admin: adminSchema,
  log: logSchema,
  shutdown: shutdownSchema,
  runtime: runtimeSchema,
  state: stateSchema,
});

/** What the loader validates: the deprecated `downlink.redis` folded into `state.redis` first. */
export const configSchema = z.preprocess(foldStateInput, configShape.superRefine(checkStateUse));

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configShape>;
