/**
 * YAML parsing for files that may hold secrets (the device file with its keys, the config). A syntax error
 * names the line and column but never quotes the file: the yaml library's pretty errors copy the offending
 * lines into the message, and messages end up in logs.
 */
import { parse, YAMLParseError } from 'yaml';

export function parseYamlText(text: string): unknown {
  try {
    return parse(text, { prettyErrors: false });
  } catch (err) {
    if (!(err instanceof YAMLParseError)) throw err;
    const offset = Math.min(err.pos[0], text.length);
    const before = text.slice(0, offset);
    const line = before.split('\n').length;
    const col = offset - before.lastIndexOf('\n');
    throw new Error(`${err.message} at line ${line}, column ${col}`, { cause: err });
  }
}
