// `node --import ./test/support/ts-register.mjs script.ts` runs a TypeScript script of the project.
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
