/** Topic templates such as `cellgate/{thing}/{path}`, compiled once. */

export interface TopicVars {
  thing: string;
  deviceId: string;
  path: string;
  pskIdentity?: string;
}

const VARS = new Set(['thing', 'deviceId', 'path', 'pskIdentity']);

export type TopicRenderer = (v: TopicVars) => string;

/** MQTT wildcards and NUL may not appear in a published topic. */
const NOT_IN_TOPIC = /[+#\0]/g;
const HAS_NOT_IN_TOPIC = /[+#\0]/;

/**
 * Compiles a template; unknown placeholders are an error. An empty value renders as `_`, and so does each
 * `+`, `#` or NUL in a value (a device path such as `a+b` must not make the topic unpublishable).
 */
export function compileTopic(template: string): TopicRenderer {
  const parts: (string | keyof TopicVars)[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    if (!VARS.has(m[1])) throw new Error(`unknown topic placeholder {${m[1]}} in "${template}"`);
    parts.push(template.slice(last, m.index));
    parts.push(m[1] as keyof TopicVars);
    last = m.index + m[0].length;
  }
  const tail = template.slice(last);
  return (v) => {
    let out = '';
    for (let i = 0; i < parts.length; i += 2) {
      out += parts[i] as string;
      const value = v[parts[i + 1] as keyof TopicVars];
      if (value === undefined || value === '') out += '_';
      else out += HAS_NOT_IN_TOPIC.test(value) ? value.replace(NOT_IN_TOPIC, '_') : value;
    }
    return out + tail;
  };
}
