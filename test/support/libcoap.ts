/** Runs libcoap's command-line clients (coap-client-notls, -openssl, -gnutls). */
import { execFile } from 'node:child_process';

export interface ClientResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

export function coapClient(bin: string, args: string[], timeoutMs = 20_000): Promise<ClientResult> {
  return new Promise((resolve) => {
    execFile(
      bin,
      args,
      { encoding: 'buffer', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const exit = (err as { code?: unknown } | null)?.code;
        const code = err ? (typeof exit === 'number' ? exit : 1) : 0;
        resolve({ code, stdout, stderr: stderr.toString() });
      },
    );
  });
}
