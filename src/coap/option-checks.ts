/**
 * Option checks on a request (RFC 7252 §5.4), before anything acts on it.
 *
 * A critical option this engine does not recognise, or one it recognises with a value length outside its
 * limits or repeated when it may not be, makes the request unprocessable: 4.02 Bad Option for a CON, a
 * rejection (RST) for a NON (§5.4.1). Elective options of that kind are ignored. Proxy-Uri and Proxy-Scheme
 * are answered 5.05 (this is no proxy, §5.7.2), and a method code past the known ones 4.05. The No-Response
 * option (RFC 7967) is read when the answer is ready: it says which classes of response the client declined.
 * Pure functions of the parsed message.
 */
import { Code, isCritical, Option, OPTION_DEFS } from './constants.js';
import type { CoapMessage } from './message.js';

/** What is wrong with a request, and how it is answered. */
export interface OptionProblem {
  /** 4.02 Bad Option, 5.05 Proxying Not Supported or 4.05 Method Not Allowed. */
  readonly code: number;
  /** Diagnostic payload of the answer. */
  readonly diagnostic: string;
  /** An unrecognised or malformed critical option: a NON request is rejected (RST) rather than answered. */
  readonly rejectsNon: boolean;
}

const NOT_A_PROXY: OptionProblem = {
  code: Code.PROXYING_NOT_SUPPORTED,
  diagnostic: 'This gateway is not a proxy',
  rejectsNon: false,
};

const UNKNOWN_METHOD: OptionProblem = {
  code: Code.METHOD_NOT_ALLOWED,
  diagnostic: 'Unknown method',
  rejectsNon: false,
};

/** The first problem with a request's options or method, in option order, or undefined when there is none. */
export function checkOptions(msg: CoapMessage): OptionProblem | undefined {
  const nums = msg.optNumbers;
  let prev = -1;
  for (let i = 0; i < nums.length; i++) {
    const n = nums[i];
    const def = OPTION_DEFS.get(n);
    let bad = def === undefined;
    if (def !== undefined) {
      const len = msg.optEnds[i] - msg.optStarts[i];
      bad = len < def.min || len > def.max || (!def.repeatable && n === prev);
    }
    prev = n;
    if (bad && isCritical(n)) {
      const name = def ? def.name : `option ${n}`;
      return { code: Code.BAD_OPTION, diagnostic: `Unrecognized or malformed ${name}`, rejectsNon: true };
    }
    if (n === Option.PROXY_URI || n === Option.PROXY_SCHEME) return NOT_A_PROXY;
  }
  return msg.code > Code.IPATCH ? UNKNOWN_METHOD : undefined;
}

/** The client declined a response of this code's class (No-Response, RFC 7967: 2 for 2.xx, 8 4.xx, 16 5.xx). */
export function suppressed(msg: CoapMessage, code: number): boolean {
  const noResponse = msg.uint(Option.NO_RESPONSE);
  if (noResponse === undefined || noResponse === 0) return false;
  const cls = code >> 5;
  return (
    (cls === 2 && (noResponse & 2) !== 0) ||
    (cls === 4 && (noResponse & 8) !== 0) ||
    (cls === 5 && (noResponse & 16) !== 0)
  );
}
