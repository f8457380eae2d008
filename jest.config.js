/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  // Synthesizing stacks is CPU-bound; 2 workers match the 2-core machines.
  setupFiles: ['<rootDir>/test/setup-env.ts', '<rootDir>/test/setup-polyfills.ts'],
  maxWorkers: 2,
  testTimeout: 60000,
};
