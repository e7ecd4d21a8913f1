/** CoAP constants from RFC 7252, RFC 7959, RFC 7967. */

export const COAP_VERSION = 1;

export const enum MessageType {
  CON = 0,
  NON = 1,
  ACK = 2,
  RST = 3,
}

/** Builds a code byte from its class and detail, e.g. code(2, 4) = 2.04. */
export function code(cls: number, detail: number): number {
  return (cls << 5) | detail;
}

/** Renders a code byte as "c.dd". */
export function codeString(c: number): string {
  const detail = c & 0x1f;
  return `${c >> 5}.${detail < 10 ? '0' : ''}${detail}`;
}

export const Code = {
  EMPTY: 0,
  GET: 1,
  POST: 2,
  PUT: 3,
  DELETE: 4,
  FETCH: 5,
  PATCH: 6,
  IPATCH: 7,
  CREATED: code(2, 1),
  DELETED: code(2, 2),
  VALID: code(2, 3),
  CHANGED: code(2, 4),
  CONTENT: code(2, 5),
  CONTINUE: code(2, 31),
  BAD_REQUEST: code(4, 0),
  UNAUTHORIZED: code(4, 1),
  BAD_OPTION: code(4, 2),
  FORBIDDEN: code(4, 3),
  NOT_FOUND: code(4, 4),
  METHOD_NOT_ALLOWED: code(4, 5),
  NOT_ACCEPTABLE: code(4, 6),
  REQUEST_ENTITY_INCOMPLETE: code(4, 8),
  CONFLICT: code(4, 9),
  PRECONDITION_FAILED: code(4, 12),
  REQUEST_ENTITY_TOO_LARGE: code(4, 13),
  UNSUPPORTED_CONTENT_FORMAT: code(4, 15),
  INTERNAL_SERVER_ERROR: code(5, 0),
  NOT_IMPLEMENTED: code(5, 1),
  BAD_GATEWAY: code(5, 2),
  SERVICE_UNAVAILABLE: code(5, 3),
  GATEWAY_TIMEOUT: code(5, 4),
  PROXYING_NOT_SUPPORTED: code(5, 5),
} as const;

export const METHOD_NAMES: Record<number, string> = {
  1: 'GET',
  2: 'POST',
  3: 'PUT',
  4: 'DELETE',
  5: 'FETCH',
  6: 'PATCH',
  7: 'IPATCH',
};

export const Option = {
  IF_MATCH: 1,
  URI_HOST: 3,
  ETAG: 4,
  IF_NONE_MATCH: 5,
  OBSERVE: 6,
  URI_PORT: 7,
  LOCATION_PATH: 8,
  URI_PATH: 11,
  CONTENT_FORMAT: 12,
  MAX_AGE: 14,
  URI_QUERY: 15,
  ACCEPT: 17,
  LOCATION_QUERY: 20,
  BLOCK2: 23,
  BLOCK1: 27,
  SIZE2: 28,
  PROXY_URI: 35,
  PROXY_SCHEME: 39,
  SIZE1: 60,
  ECHO: 252,
  NO_RESPONSE: 258,
  REQUEST_TAG: 292,
} as const;

/** Format of an option's value (RFC 7252 §3.2). */
export const enum OptionFormat {
  EMPTY,
  OPAQUE,
  UINT,
  STRING,
}

export interface OptionDef {
  readonly name: string;
  readonly format: OptionFormat;
  readonly min: number;
  readonly max: number;
  readonly repeatable: boolean;
}

/** The options this engine recognises, with their length limits (RFC 7252 §5.10, RFC 7959 §2.1, RFC 7967). */
export const OPTION_DEFS: ReadonlyMap<number, OptionDef> = new Map<number, OptionDef>([
  [Option.IF_MATCH, { name: 'If-Match', format: OptionFormat.OPAQUE, min: 0, max: 8, repeatable: true }],
  [Option.URI_HOST, { name: 'Uri-Host', format: OptionFormat.STRING, min: 1, max: 255, repeatable: false }],
  [Option.ETAG, { name: 'ETag', format: OptionFormat.OPAQUE, min: 1, max: 8, repeatable: true }],
  [
    Option.IF_NONE_MATCH,
    { name: 'If-None-Match', format: OptionFormat.EMPTY, min: 0, max: 0, repeatable: false },
  ],
  [Option.OBSERVE, { name: 'Observe', format: OptionFormat.UINT, min: 0, max: 3, repeatable: false }],
  [Option.URI_PORT, { name: 'Uri-Port', format: OptionFormat.UINT, min: 0, max: 2, repeatable: false }],
  [
    Option.LOCATION_PATH,
    { name: 'Location-Path', format: OptionFormat.STRING, min: 0, max: 255, repeatable: true },
  ],
  [Option.URI_PATH, { name: 'Uri-Path', format: OptionFormat.STRING, min: 0, max: 255, repeatable: true }],
  [
    Option.CONTENT_FORMAT,
    { name: 'Content-Format', format: OptionFormat.UINT, min: 0, max: 2, repeatable: false },
  ],
  [Option.MAX_AGE, { name: 'Max-Age', format: OptionFormat.UINT, min: 0, max: 4, repeatable: false }],
  [Option.URI_QUERY, { name: 'Uri-Query', format: OptionFormat.STRING, min: 0, max: 255, repeatable: true }],
  [Option.ACCEPT, { name: 'Accept', format: OptionFormat.UINT, min: 0, max: 2, repeatable: false }],
  [
    Option.LOCATION_QUERY,
    { name: 'Location-Query', format: OptionFormat.STRING, min: 0, max: 255, repeatable: true },
  ],
  [Option.BLOCK2, { name: 'Block2', format: OptionFormat.UINT, min: 0, max: 3, repeatable: false }],
  [Option.BLOCK1, { name: 'Block1', format: OptionFormat.UINT, min: 0, max: 3, repeatable: false }],
  [Option.SIZE2, { name: 'Size2', format: OptionFormat.UINT, min: 0, max: 4, repeatable: false }],
  [
    Option.PROXY_URI,
    { name: 'Proxy-Uri', format: OptionFormat.STRING, min: 1, max: 1034, repeatable: false },
  ],
  [
    Option.PROXY_SCHEME,
    { name: 'Proxy-Scheme', format: OptionFormat.STRING, min: 1, max: 255, repeatable: false },
  ],
  [Option.SIZE1, { name: 'Size1', format: OptionFormat.UINT, min: 0, max: 4, repeatable: false }],
  [Option.NO_RESPONSE, { name: 'No-Response', format: OptionFormat.UINT, min: 0, max: 1, repeatable: false }],
]);

/** An option number is critical when its lowest bit is set (RFC 7252 §5.4.6). */
export function isCritical(optionNumber: number): boolean {
  return (optionNumber & 1) === 1;
}

export const ContentFormat = {
  TEXT: 0,
  LINK_FORMAT: 40,
  XML: 41,
  OCTET_STREAM: 42,
  EXI: 47,
  JSON: 50,
  CBOR: 60,
  SENML_JSON: 110,
  SENML_CBOR: 112,
} as const;

/** Transmission parameters (RFC 7252 §4.8) and the times derived from them (§4.8.2). */
export interface TransmissionParameters {
  ackTimeoutMs: number;
  ackRandomFactor: number;
  maxRetransmit: number;
  nstart: number;
  maxLatencyMs: number;
  processingDelayMs: number;
}

export const DEFAULT_TRANSMISSION: TransmissionParameters = {
  ackTimeoutMs: 2000,
  ackRandomFactor: 1.5,
  maxRetransmit: 4,
  nstart: 1,
  maxLatencyMs: 100_000,
  processingDelayMs: 2000,
};

export function maxTransmitSpanMs(p: TransmissionParameters): number {
  return p.ackTimeoutMs * (2 ** p.maxRetransmit - 1) * p.ackRandomFactor;
}

/** EXCHANGE_LIFETIME: 247 s with the default parameters. */
export function exchangeLifetimeMs(p: TransmissionParameters): number {
  return maxTransmitSpanMs(p) + 2 * p.maxLatencyMs + p.processingDelayMs;
}

/** NON_LIFETIME: 145 s with the default parameters. */
export function nonLifetimeMs(p: TransmissionParameters): number {
  return maxTransmitSpanMs(p) + p.maxLatencyMs;
}
