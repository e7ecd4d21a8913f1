/**
 * Frame counter rules (as LoRaWAN's FCnt): a device counts its uplinks in a 16- or 32-bit counter; the gateway
 * keeps the last counter it accepted per device and takes an uplink only when its counter is ahead of it by
 * 1 to `maxGap` (modulo 2^bits, so a counter that wraps keeps working). Equal is a retransmission (a
 * duplicate); anything else is dropped: a counter behind the last one is a replay, and a counter that jumped
 * back to a small value (at most `maxGap`, from further back than `maxGap`) looks like a device that restarted its counting, which is accepted only after the
 * device was re-provisioned or an operator reset its counter.
 */

export type CounterVerdict = 'new' | 'duplicate' | 'replay' | 'reset' | 'gap';

export interface CounterRule {
  bits: 16 | 32;
  maxGap: number;
}

/** How `next` compares with the last accepted counter (`last` undefined: none yet, so any counter is new). */
export function judgeCounter(last: number | undefined, next: number, rule: CounterRule): CounterVerdict {
  if (last === undefined) return 'new';
  const modulus = 2 ** rule.bits;
  const ahead = (((next - last) % modulus) + modulus) % modulus;
  if (ahead === 0) return 'duplicate';
  if (ahead <= rule.maxGap) return 'new';
  if (next < last && next <= rule.maxGap && last - next > rule.maxGap) return 'reset';
  const behind = modulus - ahead;
  return behind < modulus / 2 ? 'replay' : 'gap';
}
