import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { compileServer } from './server-process.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The folder where this run's production build of the service is made (see copyServerBuild()). */
    serverBuildDir: string;
  }
}

/**
 * Once per run: one production build of the service (tsc, about 10 s of CPU) for every test file
 * that runs `node dist/main.js`, each on a private copy (copyServerBuild()). The build is started
 * here and not awaited, so that the other test files run meanwhile.
 * @returns the teardown, which stops a build still running and deletes the folder
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'sessions-build-'));
  project.provide('serverBuildDir', dir);
  const abort = new AbortController();
  const building = compileServer(dir, abort.signal);
  return async () => {
    abort.abort();
    await building.catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  };
}
