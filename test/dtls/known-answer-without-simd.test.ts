/**
 * The known-answer tests again, in a process without WebAssembly SIMD: CCM records then go through Node's
 * one-shot cipher, which must give the same bytes as OpenSSL (and as the SIMD path).
 */
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../src/dtls/crypto/aes-simd.js', async (original) => ({
  ...(await original<typeof import('../../src/dtls/crypto/aes-simd.js')>()),
  aesSimd: undefined,
}));

const { ccmAvailable } = await import('../../src/dtls/crypto/ccm.js');

describe('without WebAssembly SIMD', () => {
  it('falls back to Node’s AES-CCM', () => {
    expect(ccmAvailable).toBe(false);
  });
});

await import('./known-answer.test.js');
