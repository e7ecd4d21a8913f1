/** Every benchmark scenario, in the order `npm run bench` runs them. */
import { downlinkScenario } from '../downlink.js';
import type { Scenario } from '../lib/context.js';
import { coapEngine } from './coap-engine.js';
import { coapNosec } from './coap-nosec.js';
import { coapIot } from './coap-iot.js';
import { codecs } from './codecs.js';
import { dtls } from './dtls.js';
import { fleet } from './fleet.js';
import { publishAwsIot } from './publish.js';
import { udpScenario } from './udp.js';

export const scenarios: Scenario[] = [
  coapEngine,
  coapNosec,
  dtls,
  publishAwsIot,
  coapIot,
  codecs,
  downlinkScenario,
  udpScenario,
  fleet,
];
