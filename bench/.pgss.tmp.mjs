import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
const ROOT = process.env.ROOT ?? '/work/main';
const { startEmbeddedPostgres } = await import(join(ROOT, 'dist/database/embedded-postgres.js'));
const { SMTPServer } = await import('smtp-server');
const pg = (await import('pg')).default;
const dataDir = await mkdtemp(join(tmpdir(), 'pgss-'));
const embedded = await startEmbeddedPostgres({ dataDir, persistent: false, serverFlags: ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all', '-c', 'session_preload_libraries=auto_explain', '-c', 'auto_explain.log_min_duration=0', '-c', 'auto_explain.sample_rate=0.05', '-c', 'auto_explain.log_analyze=on', '-c', 'auto_explain.log_buffers=on', '-c', 'logging_collector=on', '-c', 'log_directory=/tmp/pglog'] });
let received = 0;
const smtp = new SMTPServer({ authOptional: true, disabledCommands: ['STARTTLS', 'AUTH'], logger: false, onData(s, _x, cb) { s.resume(); s.on('end', () => { received++; cb(); }); } });
await new Promise((r) => smtp.listen(0, '127.0.0.1', r));
const port = 18000 + Math.floor(Math.random() * 1000);
const env = { ...process.env, NODE_ENV: 'production', DATABASE_URL: embedded.url, SMTP_URL: `smtp://127.0.0.1:${smtp.server.address().port}`, APP_SECRET: randomBytes(32).toString('base64url'), PORT: String(port), RATE_LIMIT_PER_MINUTE: '0', OTP_RESEND_COOLDOWN: '0', OTP_MAX_SENDS_PER_HOUR: '1000000', LOG_LEVEL: 'warn' };
const child = spawn(process.execPath, [join(ROOT, 'dist/main.js')], { env, stdio: ['ignore', 'inherit', 'inherit'] });
const base = `http://127.0.0.1:${port}`;
for (;;) { try { if ((await fetch(`${base}/health/ready`)).ok) break; } catch {} await new Promise((r) => setTimeout(r, 200)); }
const db = new pg.Client({ connectionString: embedded.url }); await db.connect();
await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements'); await db.query('SELECT pg_stat_statements_reset()');
const N = Number(process.env.N ?? 2000), RATE = Number(process.env.RATE ?? 200);
const t0 = Date.now(); const ps = [];
for (let i = 0; i < N; i++) {
  const due = t0 + (i * 1000) / RATE; const wait = due - Date.now(); if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  ps.push(fetch(`${base}/sessions?mode=email`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: { email: `u${i}-${randomUUID().slice(0, 8)}@example.com` }, device: { type: 'othr' } }) }).then((r) => r.status));
}
const statuses = await Promise.all(ps);
while (received < N && Date.now() - t0 < 60000) await new Promise((r) => setTimeout(r, 100));
await new Promise((r) => setTimeout(r, 1500));
console.log('statuses 201:', statuses.filter((s) => s === 201).length, 'received', received);
const { rows } = await db.query(`SELECT calls, round(total_exec_time::numeric,1) ms, round(shared_blks_hit::numeric/calls,1) blks, round((total_exec_time/calls)::numeric,3) per_call, rows, left(regexp_replace(query,'\\s+',' ','g'),110) q FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT 12`);
console.table(rows);
const tot = await db.query(`SELECT sum(total_exec_time) t, sum(calls) c FROM pg_stat_statements`); console.log('total exec ms', tot.rows[0], 'per login', tot.rows[0].t / N);
await db.end(); child.kill('SIGTERM'); await new Promise((r) => child.on('exit', r)); smtp.close(); await embedded.stop();
