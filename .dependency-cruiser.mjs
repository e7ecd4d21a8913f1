/**
 * The cycle check of `npm run lint` (dependency-cruiser): no module of src/ or codecs/ reaches itself through
 * its imports. Type-only imports count (`tsPreCompilationDeps`): a cycle of types still ties the modules
 * together. The order between the folders of src/ is ESLint's rule (eslint.config.js).
 */
export default {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'Break the cycle: move what both sides need into a module of its own, or pass a callback.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
  },
};
