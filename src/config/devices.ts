/** The `devices:` section: the device registry file and whether the gateway follows its changes. */
import { z } from 'zod';

export const devicesSchema = z
  .strictObject({
    file: z.string().default('devices.yaml').describe('Device registry file (YAML list of devices).'),
    watch: z.boolean().default(true).describe('Reload the device file when it changes.'),
  })
  .prefault({});
