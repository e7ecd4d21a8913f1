import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/, lowest first (README, "Layers"). A folder imports only folders of lower layers and its
 * own files; folders of one layer do not import each other. `collections` (shared building blocks) imports
 * nothing internal; `cli.ts` sits on top. Type-only imports count as imports.
 */
export const LAYERS = [
  ['collections'],
  ['config'],
  ['ops'],
  ['transport'],
  ['coap', 'udp'],
  ['state'],
  ['dtls'],
  ['devices'],
  ['codecs', 'publish'],
  ['downlink', 'radius'],
  ['gateway', 'sim'],
  ['cli'],
];

/** Folders below src/<folder> that hold source files (src/dtls/server/x.ts is one down). */
const MAX_DEPTH = 3;

/**
 * One `no-restricted-imports` block per folder and depth: an import that climbs out of the folder
 * (`../` once per level) into a folder of the same or a higher layer is an error.
 */
function layerRules() {
  return LAYERS.flatMap((layer, rank) =>
    layer.flatMap((folder) => {
      const notBelow = LAYERS.slice(rank)
        .flat()
        .filter((f) => f !== folder);
      if (notBelow.length === 0) return [];
      const below = LAYERS.slice(0, rank).flat();
      const message =
        `src/${folder} imports only its own files and ${below.join(', ') || 'nothing else'} ` +
        `(the layers, lowest first: ${LAYERS.map((l) => l.join('/')).join(' < ')}).`;
      return Array.from({ length: MAX_DEPTH + 1 }, (_, depth) => ({
        files: [`src/${folder}/${'*/'.repeat(depth)}*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [{ regex: `^(\\.\\./){${depth + 1}}(${notBelow.join('|')})(/|\\.js$)`, message }],
            },
          ],
        },
      }));
    }),
  );
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'test/**/fixtures/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  ...layerRules(),
  {
    // The built-in codecs are plugins: they use the plugin API (src/codecs) and nothing else of the gateway.
    files: ['codecs/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(\\.\\./)+src/(?!codecs/)',
              message: 'A codec plugin imports only the plugin API (src/codecs).',
            },
          ],
        },
      ],
    },
  },
);
