/**
 * The built-in codecs, by name. Static import specifiers so both the test runner (TypeScript sources) and the
 * compiled build resolve them; each loads on first use.
 */
import type { BuiltinCodecName } from '../config/codecs.js';
import type { CodecPlugin } from './codec.js';

type Loader = () => Promise<{ default: CodecPlugin }>;

export const BUILTIN_CODECS: Readonly<Record<BuiltinCodecName, Loader>> = {
  raw: () => import('../../codecs/raw/index.js'),
  json: () => import('../../codecs/json/index.js'),
  cbor: () => import('../../codecs/cbor/index.js'),
  senml: () => import('../../codecs/senml/index.js'),
  protobuf: () => import('../../codecs/protobuf/index.js'),
  js: () => import('../../codecs/js/index.js'),
};
