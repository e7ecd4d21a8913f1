/**
 * What the per-address handshake cap counts by: an IPv4 address as it is, an IPv6 address by its prefix of
 * `dtls.ipv6PrefixLength` bits (a /64 is what one subscriber or host usually gets, so counting by full
 * address would not limit it at all). An IPv4-mapped IPv6 address (a dual-stack socket) counts as its IPv4
 * address. Called once per new handshake, never per datagram.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** The 16-bit groups of an IPv6 address (zone index dropped), or undefined if it is not one. */
export function ipv6Groups(address: string): number[] | undefined {
  const zone = address.indexOf('%');
  const text = zone < 0 ? address : address.slice(0, zone);
  if (!isIPv6(text)) return undefined;
  const halves = text.split('::');
  const parse = (part: string): number[] => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const [a, b, c, d] = g.split('.').map(Number);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]);
  if (halves.length === 1) return head;
  const tail = parse(halves[1]);
  return [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
}

/** The key under which handshakes from `address` are counted against the per-address cap. */
export function admissionKey(address: string, ipv6PrefixLength: number): string {
  if (isIPv4(address)) return address;
  const groups = ipv6Groups(address);
  if (!groups) return address;
  if (groups[0] === 0 && groups[1] === 0 && groups[2] === 0 && groups[3] === 0 && groups[4] === 0) {
    if (groups[5] === 0xffff)
      return `${groups[6] >> 8}.${groups[6] & 0xff}.${groups[7] >> 8}.${groups[7] & 0xff}`;
  }
  let key = '';
  for (let i = 0, bits = ipv6PrefixLength; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    key += (groups[i] & mask).toString(16) + ':';
  }
  return key + ':/' + ipv6PrefixLength;
}
