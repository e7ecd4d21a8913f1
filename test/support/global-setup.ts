/** Runs once before the test files: provides the system peers and services the interop tests need. */
import { ensureCommands, ensureServices } from './system.js';

export default async function setup(): Promise<void> {
  ensureCommands();
  await ensureServices();
}
