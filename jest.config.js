/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // Types are checked by `npm run typecheck`; the tests only need the code (esbuild-transform.js).
  transform: {
    '^.+\\.tsx?$': '<rootDir>/test/esbuild-transform.js',
  },
  // Synthesizing stacks is CPU-bound; 2 workers match the 2-core machines.
  setupFiles: ['<rootDir>/test/setup-env.ts', '<rootDir>/test/setup-polyfills.ts'],
  setupFilesAfterEnv: ['<rootDir>/test/setup-log-scan.ts'],
  testSequencer: '<rootDir>/test/sequencer.js',
  maxWorkers: 2,
  testTimeout: 60000,
};
