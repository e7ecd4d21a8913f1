/** Child process of the gateway crash test: a whole gateway from a config file; reports its CoAP port. */
import { loadConfig } from '../../src/config/load.js';
import { startGateway } from '../../src/gateway/app.js';
import { silentLogger } from '../../src/ops/logger.js';

const gw = await startGateway(loadConfig(process.argv[2], {}), { log: silentLogger() });
process.on('message', (m: { type?: string }) => {
  if (m.type === 'close')
    void gw.close().then(() => process.send!({ type: 'closed' }, () => process.exit(0)));
});
process.send!({ type: 'ready', coapPort: gw.ports.coap });
