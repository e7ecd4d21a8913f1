/** Runs libcoap's command-line clients (coap-client-notls, -openssl, -gnutls). */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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

/** A PDU as libcoap's clients print it at verbosity 7 (`v:1 t:ACK c:2.04 i:… {token} [ options ] :: payload`). */
export interface ShownPdu {
  type: string;
  code: string;
  token: string;
  /** Option name → values, e.g. `ETag` → [`0x0000000100000000`]. */
  options: Map<string, string[]>;
  /** The payload as printed (quoted text, or `binary data length N`), if any. */
  payload?: string;
}

const PDU_LINE = /^v:1 t:(\w+) c:(\d\.\d\d) i:\w+ \{(\w*)\} \[ ?(.*?) ?\](?: :: (.*))?$/;

/** The PDUs a libcoap client printed (run it with `-v 7`), in order. */
export function shownPdus(output: string): ShownPdu[] {
  const pdus: ShownPdu[] = [];
  for (const line of output.split('\n')) {
    const m = PDU_LINE.exec(line.trim());
    if (!m) continue;
    const options = new Map<string, string[]>();
    for (const o of m[4] ? m[4].split(', ') : []) {
      const i = o.indexOf(':');
      const name = o.slice(0, i);
      options.set(name, [...(options.get(name) ?? []), o.slice(i + 1)]);
    }
    pdus.push({ type: m[1], code: m[2], token: m[3], options, payload: m[5] });
  }
  return pdus;
}

export interface CoapExchange extends ClientResult {
  /** The responses the client printed (not empty ACKs), in order; libcoap prints a last block twice. */
  responses: ShownPdu[];
  /** The whole response body (reassembled from Block2), empty when there was none. */
  body: Buffer;
  /** Everything the client printed. */
  output: string;
}

/** Runs a libcoap client at verbosity 7, writing the body to a temporary file (its log goes to stdout). */
export async function coapExchange(bin: string, args: string[], uri: string): Promise<CoapExchange> {
  const out = join(tmpdir(), `cellgate-coap-${randomBytes(6).toString('hex')}`);
  const r = await coapClient(bin, ['-v', '7', '-B', '10', '-o', out, ...args, uri]);
  let body = Buffer.alloc(0);
  try {
    body = readFileSync(out);
  } catch {
    // No payload came back.
  }
  rmSync(out, { force: true });
  const output = r.stdout.toString() + r.stderr;
  const responses = shownPdus(output).filter((p) => !p.code.startsWith('0.'));
  return { ...r, responses, body, output };
}
