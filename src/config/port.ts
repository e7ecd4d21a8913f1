/** A UDP or TCP port number, as the sections that name listening ports write it. */
import { z } from 'zod';

export const portSchema = z.number().int().min(0).max(65535);
