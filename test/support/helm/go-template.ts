/**
 * A small interpreter for the subset of Go's text/template that the cellgate chart uses, so its manifests can
 * be rendered and checked without the helm binary. Anything outside the subset is an error, never a guess:
 *
 * - text and actions, `{{-` / `-}}` whitespace trimming, `{{/* comments *\/}}`;
 * - if / else if / else, with / else, range (lists and maps, `$v :=`, `$k, $v :=`), define, template, end;
 * - pipelines with `|`, parenthesised pipelines, `$` and `$var` (`:=` and `=`), field chains on `.`, on
 *   variables and on parenthesised pipelines, method calls through a field chain (`.Files.Get "x"`);
 * - string (interpreted and raw), number, boolean and nil literals;
 * - Go's truthiness, and nil field access as an error, as in Helm ("nil pointer evaluating interface {}.x").
 *
 * Functions come from a table (see helm-functions.ts). Values follow Helm's model: maps, lists, strings,
 * booleans, nil and numbers, all numbers being float64 as in values read from YAML.
 */

export type Value = unknown;
export type Func = (...args: Value[]) => Value;

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
}

// ---------------------------------------------------------------------------------------------- lexing

type Piece = { kind: 'text'; text: string } | { kind: 'action'; src: string; where: string };

const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r';

function split(source: string, file: string): Piece[] {
  const pieces: Piece[] = [];
  let pos = 0;
  let trimNext = false;
  const line = (at: number) => source.slice(0, at).split('\n').length;
  while (pos < source.length) {
    const open = source.indexOf('{{', pos);
    let text = open < 0 ? source.slice(pos) : source.slice(pos, open);
    if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
    trimNext = false;
    if (open < 0) {
      if (text) pieces.push({ kind: 'text', text });
      break;
    }
    let start = open + 2;
    if (source[start] === '-' && isSpace(source[start + 1])) {
      text = text.replace(/[ \t\r\n]+$/, '');
      start += 2;
    }
    if (text) pieces.push({ kind: 'text', text });
    // Find the closing braces outside string literals.
    let i = start;
    let quote: string | undefined;
    for (; i < source.length; i++) {
      const c = source[i];
      if (quote) {
        if (c === '\\' && quote === '"') i++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === '`') quote = c;
      else if (c === '}' && source[i + 1] === '}') break;
      else if (c === '/' && source[i + 1] === '*') {
        const endComment = source.indexOf('*/', i + 2);
        if (endComment < 0) throw new TemplateError(`${file}:${line(open)}: unclosed comment`);
        i = endComment + 1;
      }
    }
    if (i >= source.length) throw new TemplateError(`${file}:${line(open)}: unclosed action`);
    let end = i;
    if (source[end - 1] === '-' && isSpace(source[end - 2])) {
      trimNext = true;
      end -= 2;
    }
    const src = source.slice(start, end).trim();
    pos = i + 2;
    if (src.startsWith('/*')) {
      if (!src.endsWith('*/'))
        throw new TemplateError(`${file}:${line(open)}: a comment must fill its action`);
      continue;
    }
    pieces.push({ kind: 'action', src, where: `${file}:${line(open)}` });
  }
  return pieces;
}

type Tok =
  | { t: 'str'; v: string }
  | { t: 'num'; v: number }
  | { t: 'ident'; v: string }
  | { t: 'field'; v: string[] } // .a.b (empty: the dot itself)
  | { t: 'var'; v: string; fields: string[] } // $x.a.b ("" is $)
  | { t: 'chain'; v: string[] } // .a.b right after a closing parenthesis
  | { t: 'punct'; v: '(' | ')' | '|' | ',' | ':=' | '=' };

function unquote(s: string, where: string): string {
  try {
    return JSON.parse(s.replace(/\\'/g, "'").replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1')) as string;
  } catch {
    throw new TemplateError(`${where}: bad string literal ${s}`);
  }
}

function tokenize(src: string, where: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const ident = /[A-Za-z_][A-Za-z0-9_]*/y;
  const fieldChain = /(?:\.[A-Za-z_][A-Za-z0-9_]*)+/y;
  const num = /-?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/y;
  while (i < src.length) {
    const c = src[i];
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      toks.push({ t: 'str', v: unquote(src.slice(i, j + 1), where) });
      i = j + 1;
      continue;
    }
    if (c === '`') {
      const j = src.indexOf('`', i + 1);
      toks.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    if (c === ':' && src[i + 1] === '=') {
      toks.push({ t: 'punct', v: ':=' });
      i += 2;
      continue;
    }
    if (c === '(' || c === ')' || c === '|' || c === ',' || c === '=') {
      toks.push({ t: 'punct', v: c });
      i++;
      if (c === ')') {
        fieldChain.lastIndex = i;
        const m = fieldChain.exec(src);
        if (m) {
          toks.push({ t: 'chain', v: m[0].slice(1).split('.') });
          i += m[0].length;
        }
      }
      continue;
    }
    if (c === '$') {
      ident.lastIndex = i + 1;
      const m = ident.exec(src);
      const name = m ? m[0] : '';
      i += 1 + name.length;
      fieldChain.lastIndex = i;
      const f = fieldChain.exec(src);
      const fields = f ? f[0].slice(1).split('.') : [];
      if (f) i += f[0].length;
      toks.push({ t: 'var', v: name, fields });
      continue;
    }
    if (c === '.') {
      fieldChain.lastIndex = i;
      const f = fieldChain.exec(src);
      if (f) {
        toks.push({ t: 'field', v: f[0].slice(1).split('.') });
        i += f[0].length;
      } else {
        toks.push({ t: 'field', v: [] });
        i++;
      }
      continue;
    }
    num.lastIndex = i;
    const n = num.exec(src);
    if (n && (c === '-' || /\d/.test(c))) {
      toks.push({ t: 'num', v: Number(n[0]) });
      i += n[0].length;
      continue;
    }
    ident.lastIndex = i;
    const id = ident.exec(src);
    if (id) {
      toks.push({ t: 'ident', v: id[0] });
      i += id[0].length;
      continue;
    }
    throw new TemplateError(`${where}: unexpected "${c}" in action`);
  }
  return toks;
}

// ---------------------------------------------------------------------------------------------- parsing

type Operand =
  | { k: 'lit'; v: Value }
  | { k: 'field'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'func'; name: string }
  | { k: 'pipe'; pipe: Pipeline; path: string[] };

interface Pipeline {
  decl: string[];
  assign: boolean;
  cmds: Operand[][];
  where: string;
}

type Node =
  | { n: 'text'; text: string }
  | { n: 'action'; pipe: Pipeline }
  | { n: 'if'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'with'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'range'; pipe: Pipeline; then: Node[]; else: Node[] }
  | { n: 'template'; name: string; pipe: Pipeline | undefined; where: string };

const KEYWORDS = new Set([
  'if',
  'else',
  'end',
  'range',
  'with',
  'define',
  'template',
  'block',
  'break',
  'continue',
]);

function parsePipeline(toks: Tok[], where: string, allowDecl: boolean): Pipeline {
  let pos = 0;
  const decl: string[] = [];
  let assign = false;
  // Declarations: $x := …, $k, $v := …, $x = …
  if (allowDecl && toks[0]?.t === 'var') {
    let j = 0;
    const names: string[] = [];
    while (toks[j]?.t === 'var') {
      const v = toks[j] as { v: string; fields: string[] };
      if (v.fields.length) break;
      names.push(v.v);
      j++;
      if (toks[j]?.t === 'punct' && (toks[j] as { v: string }).v === ',') j++;
      else break;
    }
    const op = toks[j];
    if (op?.t === 'punct' && (op.v === ':=' || op.v === '=')) {
      decl.push(...names);
      assign = op.v === '=';
      pos = j + 1;
    }
  }
  const parseCmds = (): Operand[][] => {
    const cmds: Operand[][] = [];
    let cmd: Operand[] = [];
    while (pos < toks.length) {
      const tok = toks[pos];
      if (tok.t === 'punct' && tok.v === ')') break;
      pos++;
      if (tok.t === 'punct' && tok.v === '|') {
        if (cmd.length === 0) throw new TemplateError(`${where}: empty command in pipeline`);
        cmds.push(cmd);
        cmd = [];
        continue;
      }
      if (tok.t === 'punct' && tok.v === '(') {
        const inner = parseCmds();
        const close = toks[pos++];
        if (!close || close.t !== 'punct' || close.v !== ')') throw new TemplateError(`${where}: unclosed (`);
        let path: string[] = [];
        if (toks[pos]?.t === 'chain') path = (toks[pos++] as { v: string[] }).v;
        cmd.push({ k: 'pipe', pipe: { decl: [], assign: false, cmds: inner, where }, path });
        continue;
      }
      if (tok.t === 'str' || tok.t === 'num') cmd.push({ k: 'lit', v: tok.v });
      else if (tok.t === 'field') cmd.push({ k: 'field', path: tok.v });
      else if (tok.t === 'var') cmd.push({ k: 'var', name: tok.v, path: tok.fields });
      else if (tok.t === 'ident') {
        if (tok.v === 'true' || tok.v === 'false') cmd.push({ k: 'lit', v: tok.v === 'true' });
        else if (tok.v === 'nil') cmd.push({ k: 'lit', v: null });
        else if (KEYWORDS.has(tok.v)) throw new TemplateError(`${where}: unexpected keyword ${tok.v}`);
        else cmd.push({ k: 'func', name: tok.v });
      } else throw new TemplateError(`${where}: unexpected token ${JSON.stringify(tok)}`);
    }
    if (cmd.length) cmds.push(cmd);
    return cmds;
  };
  const cmds = parseCmds();
  if (pos !== toks.length) throw new TemplateError(`${where}: unbalanced )`);
  if (cmds.length === 0) throw new TemplateError(`${where}: missing value`);
  return { decl, assign, cmds, where };
}

export interface ParsedTemplate {
  nodes: Node[];
  defines: Map<string, Node[]>;
}

export function parseTemplate(source: string, file: string): ParsedTemplate {
  const pieces = split(source, file);
  const defines = new Map<string, Node[]>();
  let pos = 0;
  // Parses nodes until one of `stops` (else / end); returns the nodes and the stopping action's tokens.
  const parseList = (
    stops: boolean,
  ): { nodes: Node[]; stop?: { word: string; toks: Tok[]; where: string } } => {
    const nodes: Node[] = [];
    while (pos < pieces.length) {
      const p = pieces[pos++];
      if (p.kind === 'text') {
        nodes.push({ n: 'text', text: p.text });
        continue;
      }
      const toks = tokenize(p.src, p.where);
      const first = toks[0];
      const word = first?.t === 'ident' && KEYWORDS.has(first.v) ? first.v : undefined;
      if (word === undefined) {
        nodes.push({ n: 'action', pipe: parsePipeline(toks, p.where, true) });
        continue;
      }
      const rest = toks.slice(1);
      switch (word) {
        case 'end':
        case 'else':
          if (!stops) throw new TemplateError(`${p.where}: unexpected {{${word}}}`);
          return { nodes, stop: { word, toks: rest, where: p.where } };
        case 'if':
        case 'with':
        case 'range':
          nodes.push(
            parseControl(
              word,
              parsePipeline(rest, p.where, word === 'range' || word === 'with' || word === 'if'),
            ),
          );
          break;
        case 'define': {
          if (rest.length !== 1 || rest[0].t !== 'str')
            throw new TemplateError(`${p.where}: define needs a name`);
          const name = rest[0].v;
          const body = parseList(true);
          if (body.stop?.word !== 'end') throw new TemplateError(`${p.where}: define ${name} without end`);
          if (defines.has(name)) throw new TemplateError(`${p.where}: template ${name} defined twice`);
          defines.set(name, body.nodes);
          break;
        }
        case 'template': {
          if (rest[0]?.t !== 'str') throw new TemplateError(`${p.where}: template needs a name`);
          nodes.push({
            n: 'template',
            name: rest[0].v,
            pipe: rest.length > 1 ? parsePipeline(rest.slice(1), p.where, false) : undefined,
            where: p.where,
          });
          break;
        }
        default:
          throw new TemplateError(`${p.where}: {{${word}}} is not supported by this renderer`);
      }
    }
    if (stops) throw new TemplateError(`${file}: missing {{end}}`);
    return { nodes };
  };
  const parseControl = (word: 'if' | 'with' | 'range', pipe: Pipeline): Node => {
    const body = parseList(true);
    let elseNodes: Node[] = [];
    const stop = body.stop!;
    if (stop.word === 'else') {
      if (stop.toks.length > 0) {
        // else if … / else with …: a nested control sharing our end.
        const inner = stop.toks[0];
        if (inner.t !== 'ident' || (inner.v !== 'if' && inner.v !== 'with'))
          throw new TemplateError(`${stop.where}: else must be followed by if, with or nothing`);
        elseNodes = [parseControl(inner.v, parsePipeline(stop.toks.slice(1), stop.where, true))];
        return { n: word, pipe, then: body.nodes, else: elseNodes };
      }
      const tail = parseList(true);
      if (tail.stop?.word !== 'end') throw new TemplateError(`${stop.where}: else without end`);
      elseNodes = tail.nodes;
    }
    return { n: word, pipe, then: body.nodes, else: elseNodes };
  };
  const { nodes } = parseList(false);
  return { nodes, defines };
}

// ---------------------------------------------------------------------------------------------- evaluation

export function isMap(v: Value): v is Record<string, Value> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Go's truth: false, 0, nil and empty strings, lists and maps are false. */
export function truthy(v: Value): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isMap(v)) return Object.keys(v).length > 0;
  return true;
}

/**
 * Go's %v for a float64 (values read from YAML are float64): strconv's shortest 'g' form, which switches to
 * the exponent form below 1e-4 and from 1e+06 on (Helm prints 1000000 from values as 1e+06).
 */
export function goNumber(n: number): string {
  if (!Number.isFinite(n)) return n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
  if (n === 0) return '0';
  const exp = Number(n.toExponential().split('e')[1]);
  if (exp < -4 || exp >= 6) return goExp(n);
  return String(n);
}

function goExp(n: number): string {
  const [m, e] = n.toExponential().split('e');
  const sign = e.startsWith('-') ? '-' : '+';
  const digits = e.replace(/^[+-]/, '');
  return `${m}e${sign}${digits.padStart(2, '0')}`;
}

/** How Go prints a value in template output; Helm turns "<no value>" (nil) into nothing. */
export function printValue(v: Value, where: string): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return goNumber(v);
  if (typeof v === 'boolean') return String(v);
  throw new TemplateError(`${where}: printing a ${Array.isArray(v) ? 'list' : 'map'} (use toYaml)`);
}

interface Scope {
  vars: { name: string; value: Value }[];
}

export class TemplateSet {
  private readonly templates = new Map<string, Node[]>();
  private readonly files = new Map<string, ParsedTemplate>();
  private depth = 0;

  constructor(private readonly funcs: Record<string, Func>) {}

  /** Adds a file: its defines join the set, and it can be rendered by its name. */
  add(name: string, source: string): void {
    const parsed = parseTemplate(source, name);
    for (const [k, v] of parsed.defines) {
      if (this.templates.has(k)) throw new TemplateError(`${name}: template ${k} is already defined`);
      this.templates.set(k, v);
    }
    this.files.set(name, parsed);
    this.templates.set(name, parsed.nodes);
  }

  has(name: string): boolean {
    return this.templates.has(name);
  }

  /** Renders a named template (a file or a define) with `dot` as its data. */
  render(name: string, dot: Value): string {
    const nodes = this.templates.get(name);
    if (!nodes) throw new TemplateError(`no template named ${name}`);
    if (++this.depth > 100) throw new TemplateError(`template ${name}: too deeply nested`);
    try {
      return this.list(nodes, dot, dot, { vars: [{ name: '', value: dot }] });
    } finally {
      this.depth--;
    }
  }

  private list(nodes: Node[], dot: Value, root: Value, scope: Scope): string {
    let out = '';
    for (const node of nodes) out += this.node(node, dot, root, scope);
    return out;
  }

  private node(node: Node, dot: Value, root: Value, scope: Scope): string {
    switch (node.n) {
      case 'text':
        return node.text;
      case 'action': {
        const v = this.pipeline(node.pipe, dot, scope);
        return node.pipe.decl.length ? '' : printValue(v, node.pipe.where);
      }
      case 'template':
        return this.render(node.name, node.pipe ? this.pipeline(node.pipe, dot, scope) : null);
      case 'if':
      case 'with': {
        const mark = scope.vars.length;
        try {
          const v = this.pipeline(node.pipe, dot, scope);
          if (truthy(v)) return this.list(node.then, node.n === 'with' ? v : dot, root, scope);
          return this.list(node.else, dot, root, scope);
        } finally {
          scope.vars.length = mark;
        }
      }
      case 'range': {
        const decl = node.pipe.decl;
        const v = this.pipeline({ ...node.pipe, decl: [] }, dot, scope);
        if (!truthy(v)) return this.list(node.else, dot, root, scope);
        let entries: [Value, Value][];
        if (Array.isArray(v)) entries = v.map((x, i) => [i, x]);
        else if (isMap(v))
          entries = Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]);
        else throw new TemplateError(`${node.pipe.where}: range over ${typeof v}`);
        let out = '';
        for (const [k, x] of entries) {
          const mark = scope.vars.length;
          if (decl.length === 1) scope.vars.push({ name: decl[0], value: x });
          if (decl.length === 2) scope.vars.push({ name: decl[0], value: k }, { name: decl[1], value: x });
          out += this.list(node.then, x, root, scope);
          scope.vars.length = mark;
        }
        return out;
      }
    }
  }

  private pipeline(p: Pipeline, dot: Value, scope: Scope): Value {
    let v: Value = undefined;
    let piped = false;
    for (const cmd of p.cmds) {
      v = this.command(cmd, dot, scope, piped ? [v] : [], p.where);
      piped = true;
    }
    if (p.decl.length > 1) throw new TemplateError(`${p.where}: two variables outside range`);
    if (p.decl.length === 1) {
      if (p.assign) {
        const existing = [...scope.vars].reverse().find((x) => x.name === p.decl[0]);
        if (!existing) throw new TemplateError(`${p.where}: undefined variable $${p.decl[0]}`);
        existing.value = v;
      } else scope.vars.push({ name: p.decl[0], value: v });
    }
    return v;
  }

  private command(cmd: Operand[], dot: Value, scope: Scope, piped: Value[], where: string): Value {
    const head = cmd[0];
    if (head.k === 'func') {
      const name = head.name;
      if (name === 'and' || name === 'or') {
        // Evaluated lazily, returning the deciding argument (Go ≥ 1.18).
        const args = cmd.slice(1);
        let last: Value = undefined;
        const all = [
          ...args.map((a) => () => this.operand(a, dot, scope, where)),
          ...piped.map((p) => () => p),
        ];
        if (all.length === 0) throw new TemplateError(`${where}: ${name} needs arguments`);
        for (const get of all) {
          last = get();
          if (name === 'and' ? !truthy(last) : truthy(last)) return last;
        }
        return last;
      }
      if (name === 'include') {
        const [tname, data] = [...cmd.slice(1).map((a) => this.operand(a, dot, scope, where)), ...piped];
        if (typeof tname !== 'string') throw new TemplateError(`${where}: include needs a template name`);
        return this.render(tname, data);
      }
      const fn = Object.hasOwn(this.funcs, name) ? this.funcs[name] : undefined;
      if (!fn) throw new TemplateError(`${where}: function "${name}" is not supported by this renderer`);
      const args = [...cmd.slice(1).map((a) => this.operand(a, dot, scope, where)), ...piped];
      try {
        return fn(...args);
      } catch (err) {
        if (err instanceof TemplateError) throw err;
        throw new TemplateError(`${where}: ${name}: ${(err as Error).message}`);
      }
    }
    // A value, or a method reached through a field chain (.Files.Get "x").
    const value = this.operand(head, dot, scope, where);
    if (typeof value === 'function') {
      const args = [...cmd.slice(1).map((a) => this.operand(a, dot, scope, where)), ...piped];
      return (value as Func)(...args);
    }
    if (cmd.length > 1 || piped.length)
      throw new TemplateError(`${where}: can't give argument to non-function`);
    return value;
  }

  private operand(op: Operand, dot: Value, scope: Scope, where: string): Value {
    switch (op.k) {
      case 'lit':
        return op.v;
      case 'field':
        return fields(dot, op.path, where);
      case 'var': {
        const found = [...scope.vars].reverse().find((x) => x.name === op.name);
        if (!found) throw new TemplateError(`${where}: undefined variable $${op.name}`);
        return fields(found.value, op.path, where);
      }
      case 'pipe':
        return fields(this.pipeline(op.pipe, dot, scope), op.path, where);
      case 'func': {
        const fn = Object.hasOwn(this.funcs, op.name) ? this.funcs[op.name] : undefined;
        if (!fn) throw new TemplateError(`${where}: function "${op.name}" is not supported by this renderer`);
        return fn();
      }
    }
  }
}

function fields(v: Value, path: string[], where: string): Value {
  let cur = v;
  for (let i = 0; i < path.length; i++) {
    const name = path[i];
    if (cur === null || cur === undefined) {
      throw new TemplateError(`${where}: nil pointer evaluating interface {}.${name}`);
    }
    if (!isMap(cur)) throw new TemplateError(`${where}: can't evaluate field ${name} in type ${typeof cur}`);
    cur = Object.hasOwn(cur, name) ? cur[name] : undefined;
    if (typeof cur === 'function' && i < path.length - 1) cur = (cur as Func)();
  }
  return cur === undefined ? null : cur;
}
