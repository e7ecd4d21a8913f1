/** HMAC-SHA256 (RFC 2104) with one key over messages given in parts, so callers need not concatenate. */
import { createHmac } from 'node:crypto';

export class HmacSha256 {
  constructor(private readonly key: Buffer) {}

  /** HMAC over the concatenation of `parts`. */
  mac(parts: readonly (Buffer | string)[]): Buffer {
    const h = createHmac('sha256', this.key);
    for (const p of parts) h.update(p);
    return h.digest();
  }
}
