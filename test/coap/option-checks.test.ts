import { describe, expect, it } from 'vitest';
import { Code, MessageType, Option } from '../../src/coap/constants.js';
import { encodeMessage, parseMessage, CoapMessage, type OptionEntry } from '../../src/coap/message.js';
import { checkOptions, suppressed } from '../../src/coap/option-checks.js';

function request(options: OptionEntry[], code: number = Code.POST): CoapMessage {
  const m = parseMessage(encodeMessage({ type: MessageType.CON, code, messageId: 1, options }));
  if (!(m instanceof CoapMessage)) throw new Error(m.reason);
  return m;
}

describe('option checks (RFC 7252 §5.4)', () => {
  it('passes a request with recognised options and a known method', () => {
    expect(checkOptions(request([]))).toBeUndefined();
    expect(
      checkOptions(
        request([
          [Option.URI_PATH, 'a'],
          [Option.URI_PATH, 'b'],
          [Option.CONTENT_FORMAT, 60],
          [Option.URI_QUERY, 'id=1'],
          [Option.BLOCK1, 0x0e],
        ]),
      ),
    ).toBeUndefined();
    expect(checkOptions(request([], Code.IPATCH))).toBeUndefined();
  });

  it('finds an unrecognised critical option: 4.02 naming its number, and a NON is rejected', () => {
    expect(checkOptions(request([[9, Buffer.from([1])]]))).toEqual({
      code: Code.BAD_OPTION,
      diagnostic: 'Unrecognized or malformed option 9',
      rejectsNon: true,
    });
  });

  it('ignores an unrecognised elective option, and a malformed or repeated elective one', () => {
    expect(checkOptions(request([[2048, Buffer.from([1])]]))).toBeUndefined();
    expect(checkOptions(request([[Option.CONTENT_FORMAT, Buffer.alloc(3)]]))).toBeUndefined();
    expect(
      checkOptions(
        request([
          [Option.CONTENT_FORMAT, 50],
          [Option.CONTENT_FORMAT, 60],
        ]),
      ),
    ).toBeUndefined();
  });

  it('treats a critical option of a bad length, or repeated when it may not be, as unrecognised', () => {
    expect(checkOptions(request([[Option.URI_HOST, '']]))?.diagnostic).toBe(
      'Unrecognized or malformed Uri-Host',
    );
    expect(checkOptions(request([[Option.BLOCK1, Buffer.alloc(4)]]))?.diagnostic).toBe(
      'Unrecognized or malformed Block1',
    );
    const accept = checkOptions(
      request(
        [
          [Option.ACCEPT, 50],
          [Option.ACCEPT, 60],
        ],
        Code.GET,
      ),
    );
    expect(accept).toMatchObject({ code: Code.BAD_OPTION, rejectsNon: true });
    expect(accept?.diagnostic).toMatch(/Accept/);
  });

  it('answers Proxy-Uri and Proxy-Scheme 5.05, without rejecting a NON', () => {
    for (const option of [Option.PROXY_URI, Option.PROXY_SCHEME]) {
      expect(checkOptions(request([[option, 'coap://x/']], Code.GET))).toEqual({
        code: Code.PROXYING_NOT_SUPPORTED,
        diagnostic: 'This gateway is not a proxy',
        rejectsNon: false,
      });
    }
    // An empty Proxy-Uri is malformed first.
    expect(checkOptions(request([[Option.PROXY_URI, '']]))?.code).toBe(Code.BAD_OPTION);
  });

  it('answers the first problem in option order', () => {
    expect(
      checkOptions(
        request([
          [9, Buffer.from([1])],
          [Option.PROXY_URI, 'coap://x/'],
        ]),
      )?.code,
    ).toBe(Code.BAD_OPTION);
    expect(
      checkOptions(
        request([
          [Option.PROXY_URI, 'coap://x/'],
          [41, Buffer.from([1])],
        ]),
      )?.code,
    ).toBe(Code.PROXYING_NOT_SUPPORTED);
    // Options come before the method.
    expect(checkOptions(request([[9, Buffer.from([1])]], 12))?.code).toBe(Code.BAD_OPTION);
  });

  it('answers a method code past the known ones 4.05', () => {
    expect(checkOptions(request([], 12))).toEqual({
      code: Code.METHOD_NOT_ALLOWED,
      diagnostic: 'Unknown method',
      rejectsNon: false,
    });
  });

  it('tells which classes of response the client declined (No-Response, RFC 7967)', () => {
    const classes = (noResponse?: number) => {
      const msg = request(noResponse === undefined ? [] : [[Option.NO_RESPONSE, noResponse]]);
      return [Code.CHANGED, Code.NOT_FOUND, Code.SERVICE_UNAVAILABLE].map((c) => suppressed(msg, c));
    };
    expect(classes()).toEqual([false, false, false]);
    expect(classes(0)).toEqual([false, false, false]);
    expect(classes(2)).toEqual([true, false, false]);
    expect(classes(8)).toEqual([false, true, false]);
    expect(classes(16)).toEqual([false, false, true]);
    expect(classes(26)).toEqual([true, true, true]);
  });
});
