/**
 * The chart renderer's template engine against Go text/template and Helm semantics, case by case, so that a
 * chart it renders is rendered the way helm would (and anything it does not know fails loudly).
 */
import { describe, expect, it } from 'vitest';
import { goNumber, TemplateSet, type Value } from '../support/helm/go-template.js';
import { HELM_FUNCTIONS, toYaml } from '../support/helm/helm-functions.js';

function render(src: string, data: Value = {}, defs = ''): string {
  const set = new TemplateSet(HELM_FUNCTIONS);
  if (defs) set.add('defs.tpl', defs);
  set.add('t', src);
  return set.render('t', data);
}

describe('template engine', () => {
  it('trims whitespace at {{- and -}} and drops comments', () => {
    expect(render('a  \n  {{- "b" -}}  \n c')).toBe('abc');
    expect(render('a {{- /* note */ -}} b')).toBe('ab');
    expect(render('a {{/* note */}} b')).toBe('a  b');
    expect(render('{{ 3 }} {{-3}}')).toBe('3 -3'); // "{{-3" is the number -3, not a trim marker
  });

  it('evaluates if / else if / else, with, and Go truthiness', () => {
    const t = '{{ if .a }}A{{ else if .b }}B{{ else }}C{{ end }}';
    expect(render(t, { a: 1 })).toBe('A');
    expect(render(t, { a: 0, b: 'x' })).toBe('B');
    for (const empty of [0, '', false, null, [], {}]) expect(render(t, { a: empty, b: empty })).toBe('C');
    expect(render('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: { k: 'v' } })).toBe('v');
    expect(render('{{ with .m }}{{ .k }}{{ else }}none{{ end }}', { m: {} })).toBe('none');
  });

  it('ranges over lists and over maps in key order, with variables scoped to the loop', () => {
    expect(render('{{ range $i, $v := .l }}{{ $i }}={{ $v }};{{ end }}', { l: ['a', 'b'] })).toBe('0=a;1=b;');
    expect(render('{{ range $k, $v := .m }}{{ $k }}:{{ $v }} {{ end }}', { m: { z: 1, a: 2 } })).toBe(
      'a:2 z:1 ',
    );
    expect(render('{{ range .l }}[{{ . }}]{{ else }}empty{{ end }}', { l: [] })).toBe('empty');
    expect(() => render('{{ range $v := .l }}{{ end }}{{ $v }}', { l: [1] })).toThrow(
      /undefined variable \$v/,
    );
    expect(render('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}')).toBe('2');
    expect(render('{{ range .l }}{{ $.top }}{{ end }}', { l: [1, 2], top: 'T' })).toBe('TT');
  });

  it('pipes the previous value as the last argument and evaluates parenthesised pipelines', () => {
    expect(render('{{ .s | trimSuffix "-" | upper | quote }}', { s: 'ab-' })).toBe('"AB"');
    expect(render('{{ default (printf "%s-%s" .a .b) .c }}', { a: 'x', b: 'y', c: '' })).toBe('x-y');
    expect(render('{{ (dict "k" "v").k }}')).toBe('v');
  });

  it('short-circuits and / or and returns the deciding value', () => {
    expect(render('{{ or .a .b "c" }}', { a: '', b: 'B' })).toBe('B');
    expect(render('{{ and .a .missing.x }}', { a: false })).toBe('false');
  });

  it('fails on nil field access, unknown functions and printing maps, as helm does', () => {
    expect(() => render('{{ .a.b.c }}', { a: {} })).toThrow(/nil pointer evaluating interface \{\}\.c/);
    expect(render('{{ .missing }}', {})).toBe(''); // helm prints nothing for a missing value
    expect(() => render('{{ now }}')).toThrow(/function "now" is not supported/);
    expect(() => render('{{ constructor }}')).toThrow(/not supported/);
    expect(() => render('{{ .m }}', { m: { a: 1 } })).toThrow(/printing a map/);
    expect(() => render('{{ if .a }}x')).toThrow(/missing \{\{end\}\}/);
    expect(() => render('{{ block "x" . }}{{ end }}')).toThrow(/not supported by this renderer/);
    expect(() => render('{{ eq 1 "1" }}')).toThrow(/incompatible types/);
  });

  it('includes defined templates with their own data', () => {
    const defs = '{{- define "greet" -}}hello {{ .name }}{{- end -}}';
    expect(render('{{ include "greet" (dict "name" "x") | upper }}', {}, defs)).toBe('HELLO X');
    expect(render('{{ template "greet" .p }}', { p: { name: 'y' } }, defs)).toBe('hello y');
    expect(() => render('{{ include "nope" . }}')).toThrow(/no template named nope/);
  });

  it('prints numbers like Go prints float64 values from YAML', () => {
    expect(goNumber(5683)).toBe('5683');
    expect(goNumber(100000)).toBe('100000');
    expect(goNumber(1000000)).toBe('1e+06');
    expect(goNumber(1234567)).toBe('1.234567e+06');
    expect(goNumber(0.5)).toBe('0.5');
    expect(goNumber(0.00001)).toBe('1e-05');
    expect(render('{{ .n }}', { n: 30 })).toBe('30');
  });
});

describe('helm functions', () => {
  it('toYaml sorts keys, quotes YAML 1.1 look-alikes and has no trailing newline', () => {
    expect(toYaml({ b: 1, a: { d: 'on', c: '5683' } })).toBe('a:\n  c: "5683"\n  d: "on"\nb: 1');
    expect(render('x:{{ toYaml .l | nindent 2 }}', { l: ['a', 'b'] })).toBe('x:\n  - a\n  - b');
  });

  it('toJson sorts keys compactly and escapes HTML characters', () => {
    expect(render('{{ toJson .v }}', { v: { b: '<&>', a: [1] } })).toBe(
      '{"a":[1],"b":"\\u003c\\u0026\\u003e"}',
    );
  });

  it('default and empty treat zero values as empty', () => {
    expect(render('{{ default "d" .v }}', { v: 0 })).toBe('d');
    expect(render('{{ default "d" .v }}', { v: false })).toBe('d');
    expect(render('{{ default "d" .v }}', { v: 'x' })).toBe('x');
    expect(render('{{ empty .v }}', { v: {} })).toBe('true');
  });

  it('dig finds nested keys or gives the default; mustMergeOverwrite lets only non-empty values override', () => {
    expect(render('{{ dig "a" "b" "d" .m }}', { m: { a: { b: false } } })).toBe('false');
    expect(render('{{ dig "a" "x" "d" .m }}', { m: { a: {} } })).toBe('d');
    const out = render('{{ toYaml (mustMergeOverwrite (deepCopy .dst) .src) }}|{{ toYaml .dst }}', {
      dst: { a: { p: 1, q: 2 }, keep: true },
      src: { a: { q: 3 }, keep: false, add: 'new' },
    });
    expect(out).toBe('a:\n  p: 1\n  q: 3\nadd: new\nkeep: true|a:\n  p: 1\n  q: 2\nkeep: true');
    // YAML 1.1 reads y / n / yes / off as booleans: toYaml quotes them, as Helm's YAML writer does.
    expect(toYaml({ k: ['y', 'n', 'yes', 'off'] })).toBe('k:\n  - "y"\n  - "n"\n  - "yes"\n  - "off"');
  });

  it('int converts as sprig does, so a value read from YAML compares with an integer literal', () => {
    expect(
      render('{{ gt (int .n) 1 }} {{ int .f }} {{ int "7" }} {{ int .t }} {{ int .x }} {{ int "x1" }}', {
        n: 2,
        f: 2.9,
        t: true,
        x: null,
      }),
    ).toBe('true 2 7 1 0 0');
  });

  it('set changes a map in place (its result is usually dropped into $_)', () => {
    expect(render('{{ $m := dict "a" 1 }}{{ $_ := set $m "b" 2 }}{{ toJson $m }}')).toBe('{"a":1,"b":2}');
  });

  it('string helpers follow sprig', () => {
    expect(render('{{ trunc 3 "abcdef" }}{{ trunc -2 "abcdef" }}')).toBe('abcef');
    expect(render('{{ contains "gate" "cellgate" }} {{ hasPrefix "ce" "cellgate" }}')).toBe('true true');
    expect(render('{{ replace "+" "_" "1.0+b" }}')).toBe('1.0_b');
    expect(render('{{ indent 2 "a\\nb" }}')).toBe('  a\n  b');
    expect(render('{{ sha256sum "x" }}')).toBe(
      '2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881',
    );
    expect(render('{{ printf "%s:%d %q %%" "a" 5 "b" }}')).toBe('a:5 "b" %');
    expect(() => render('{{ required "need x" .x }}', {})).toThrow('need x');
    expect(() => render('{{ fail "stop" }}')).toThrow('stop');
  });
});
