import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { expect, inject } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..', '..');

/** A production build of the service in a private folder (the project's own `dist` is left alone). */
export interface ServerBuild {
  mainJs: string;
  /** The mail worker process's entry point (`dist/mail-worker.js`). */
  workerJs: string;
  dir: string;
  remove(): Promise<void>;
}

/** Written into the run's build folder once the build has finished (`.failed` holds why it did not). */
const BUILD_DONE = '.done';
const BUILD_FAILED = '.failed';

/**
 * Compiles `src` with `tsconfig.build.json` into `<dir>/dist` and copies its assets, as
 * `npm run build` does; then writes the `.done` marker (`.failed`, with tsc's output, if it did not
 * compile), which copyServerBuild() waits for. Run once per test run (test/support/build-setup.ts).
 * @param signal aborting it stops tsc
 */
export async function compileServer(dir: string, signal?: AbortSignal): Promise<void> {
  const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
  try {
    await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], {
      cwd: ROOT,
      signal,
    });
    // The web page's static files and the built-in mail templates, as nest-cli.json's "assets" copies them.
    await cp(join(ROOT, 'src', 'web-ui', 'public'), join(dir, 'dist', 'web-ui', 'public'), { recursive: true });
    await cp(join(ROOT, 'src', 'mail', 'templates'), join(dir, 'dist', 'mail', 'templates'), { recursive: true });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    const output = `${stdout ?? ''}${stderr ?? ''}`;
    await writeFile(join(dir, BUILD_FAILED), `The server build failed:\n${output || String(error)}`);
    return;
  }
  await writeFile(join(dir, BUILD_DONE), '');
}

/**
 * A private copy of this run's build (compileServer(), started by the global setup), in a temporary
 * folder that resolves packages from the project's `node_modules`: what a test writes there (the
 * development secret in `.data/`) is its own. Waits for the build to finish.
 * @throws Error with tsc's output when the build failed
 */
export async function copyServerBuild(): Promise<ServerBuild> {
  const built = inject('serverBuildDir');
  for (const deadline = Date.now() + 180_000; !existsSync(join(built, BUILD_DONE)); ) {
    if (existsSync(join(built, BUILD_FAILED))) throw new Error(await readFile(join(built, BUILD_FAILED), 'utf8'));
    if (Date.now() > deadline) throw new Error(`The server build in ${built} did not finish in 180 s`);
    await new Promise((wake) => setTimeout(wake, 100));
  }
  const dir = await mkdtemp(join(tmpdir(), 'sessions-build-'));
  await writeFile(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  await cp(join(built, 'dist'), join(dir, 'dist'), { recursive: true });
  return { mainJs: join(dir, 'dist', 'main.js'), workerJs: join(dir, 'dist', 'mail-worker.js'), dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** `node dist/main.js` (or `dist/mail-worker.js`) running as its own process, with what it printed. */
export interface ServerProcess {
  child: ChildProcess;
  port: number;
  baseUrl: string;
  output(): string;
  /** Resolves with the exit code and signal once the process has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts the built server with exactly `env` (plus PATH and a free PORT unless `env` names one),
 * without waiting for it (e.g. to watch a start that fails).
 * @param script the entry point: `build.mainJs` (the default) or `build.workerJs`
 */
export async function spawnServer(build: ServerBuild, env: Record<string, string>, script = build.mainJs): Promise<ServerProcess> {
  const port = env.PORT ? Number(env.PORT) : await freePort();
  const child = spawn(process.execPath, [script], {
    cwd: build.dir, // no .env there
    env: { PATH: process.env.PATH ?? '', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    child.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  return { child, port, baseUrl: `http://127.0.0.1:${port}`, output: () => output, exited };
}

/**
 * Starts the built server with exactly `env` (plus PATH and PORT), and waits for GET /health/live.
 * @param script the entry point: `build.mainJs` (the default) or `build.workerJs` (the mail worker
 *   process, which serves /health/live too)
 */
export async function startServer(build: ServerBuild, env: Record<string, string>, script = build.mainJs): Promise<ServerProcess> {
  const server = await spawnServer(build, env, script);
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (server.child.exitCode !== null) throw new Error(`The server exited with ${server.child.exitCode}:\n${server.output()}`);
    try {
      if ((await fetch(`${server.baseUrl}/health/live`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      server.child.kill('SIGKILL');
      throw new Error(`The server did not come up in 30 s:\n${server.output()}`);
    }
    await new Promise((wake) => setTimeout(wake, 100));
  }
  return server;
}

/**
 * Asserts that a process draining after SIGTERM/SIGINT answers GET /health/ready with 503
 * `shutting_down` naming `who` (`The service`, `The mail worker`).
 */
export async function expectShuttingDown(baseUrl: string, who: string): Promise<void> {
  const ready = await fetch(`${baseUrl}/health/ready`);
  expect(ready.status).toBe(503);
  expect(await ready.json()).toEqual({
    statusCode: 503,
    error: 'Service Unavailable',
    code: 'shutting_down',
    message: `${who} is shutting down.`,
  });
}

/** Whether a new TCP connection to the port is refused (ECONNREFUSED) rather than accepted. */
export function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolveRefused, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolveRefused(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNREFUSED') resolveRefused(true);
      else reject(error);
    });
  });
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
