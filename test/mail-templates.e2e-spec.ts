import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import request from 'supertest';
import { confirm, nextCode, othr, sessionRow } from './support/factories.js';
import { copyServerBuild, startServer, type ServerBuild } from './support/server-process.js';
import type { ReceivedMail } from './support/smtp-sink.js';
import { createTestApp, TEST_SECRET, type TestApp } from './support/test-app.js';
import { createTestDatabase, type TestDatabase } from './support/test-database.js';

let n = 0;
const email = () => `templates${++n}@example.com`;

/** POST /sessions with this Accept-Language (none when undefined); answers the mail it sent and the session. */
async function loginMail(t: TestApp, acceptLanguage: string | undefined, to = email()) {
  const seen = t.smtp.countTo(to);
  const call = request(t.http).post('/sessions?mode=email').send(othr(to));
  const res = await (acceptLanguage === undefined ? call : call.set('Accept-Language', acceptLanguage)).expect(201);
  const code = await nextCode(t, to, seen);
  const mail = t.smtp.messages.filter((m) => m.to === to)[seen];
  return { mail, code, uuid: res.body.uuid as string, token: res.body.token as string };
}

/** A folder of templates: `files` maps `<locale>/<file>` to its source. */
function templateFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mail-templates-'));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  return dir;
}

describe('login emails in the client\'s language, with an operator\'s templates (through SMTP)', () => {
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    dir = templateFolder({
      'de/subject.hbs': 'Ihr Code für {{app_name}} ({{locale}})',
      'de/text.hbs': 'Hallo! Ihr Code: {{code}}, gültig {{valid_minutes}} Minuten. Gerät: {{device_type}}.\n',
      'de/html.hbs': '<p>Hallo! Ihr Code: <b>{{code}}</b> von {{app_name}}.{{#if support_address}} {{support_address}}{{/if}}</p>',
    });
    t = await createTestApp({
      APP_NAME: 'Acme <Cloud>',
      MAIL_TEMPLATES_DIR: dir,
      MAIL_SUPPORT_ADDRESS: 'help@acme.example',
      OTP_RESEND_COOLDOWN: '0',
    });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a de-DE client receives the custom German template, and its code confirms the session', async () => {
    const { mail, code, uuid, token } = await loginMail(t, 'de-DE,de;q=0.9,en;q=0.8');
    expect(mail.subject).toBe('Ihr Code für Acme <Cloud> (de)');
    expect(mail.text).toBe(`Hallo! Ihr Code: ${code}, gültig 5 Minuten. Gerät: othr.\n`);
    expect(mail.html).toContain(`<p>Hallo! Ihr Code: <b>${code}</b> von Acme &lt;Cloud&gt;. help@acme.example</p>`);
    await confirm(t, uuid, token, code).expect(200);
  });

  it('a resend (POST /sessions/{uuid}/otp) is written in the locale the login negotiated, whatever the resend request says', async () => {
    const to = email();
    const { uuid, token } = await loginMail(t, 'fr-FR', to);
    const seen = t.smtp.countTo(to);
    await request(t.http)
      .post(`/sessions/${uuid}/otp`)
      .set('Authorization', `Bearer ${token}`)
      .set('Accept-Language', 'de-DE')
      .expect(202);
    const code = await nextCode(t, to, seen);
    const resent = t.smtp.messages.filter((m) => m.to === to)[seen];
    expect(resent.subject).toBe('Votre code de connexion à Acme <Cloud>');
    expect(resent.text).toContain(`    ${code}\n`);
    expect((await sessionRow(t, uuid)).locale).toBe('fr');
    await confirm(t, uuid, token, code).expect(200);
  });

  it('a fr-CA client receives the built-in French email', async () => {
    const { mail, code } = await loginMail(t, 'fr-CA;q=0.9, en;q=0.8');
    expect(mail.subject).toBe('Votre code de connexion à Acme <Cloud>');
    expect(mail.text).toContain(`Votre code de connexion à Acme <Cloud>\u00a0:\n\n    ${code}\n`);
    expect(mail.text).toContain('valable 5\u00a0minutes');
    expect(mail.html).toContain('<html lang="fr">');
    expect(mail.html).toContain('Acme &lt;Cloud&gt;');
  });

  it.each([
    [undefined, 'Your Acme <Cloud> login code'],
    ['es-ES, it;q=0.5', 'Your Acme <Cloud> login code'],
    ['*', 'Your Acme <Cloud> login code'],
    ['de;q=0, fr;q=0.1', 'Votre code de connexion à Acme <Cloud>'],
    ['%%%;;;', 'Your Acme <Cloud> login code'],
  ])('Accept-Language %j → %j', async (acceptLanguage, subject) => {
    const { mail } = await loginMail(t, acceptLanguage);
    expect(mail.subject).toBe(subject);
  });

  it('has a plain-text and an HTML part, Message-ID, Date and Auto-Submitted, no DKIM signature unless configured', async () => {
    const before = Date.now();
    const { mail } = await loginMail(t, 'en');
    expect(mail.text.length).toBeGreaterThan(0);
    expect(mail.html).toContain('<html lang="en">');
    expect(mail.headers.get('content-type')).toMatchObject({ value: 'multipart/alternative' });
    expect(mail.headers.get('message-id')).toMatch(/^<[^<>@\s]+@[^<>@\s]+>$/);
    const date = mail.headers.get('date') as Date;
    expect(date).toBeInstanceOf(Date);
    expect(Math.abs(date.getTime() - before)).toBeLessThan(60_000);
    expect(mail.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail.headers.has('dkim-signature')).toBe(false);
  });
});

describe('DKIM signing (DKIM_DOMAIN, DKIM_SELECTOR, DKIM_PRIVATE_KEY)', () => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  /** The TXT record a receiver finds at <selector>._domainkey.<domain> (RFC 6376 §3.6.2). */
  const resolver = async (name: string, rr: string) => {
    if (name === 'login2026._domainkey.test.local' && rr === 'TXT') return [[`v=DKIM1; k=rsa; p=${publicKey}`]];
    throw Object.assign(new Error(`no ${rr} record for ${name}`), { code: 'ENOTFOUND' });
  };
  let t: TestApp;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dkim-'));
    const keyFile = join(dir, 'dkim.pem');
    writeFileSync(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }));
    t = await createTestApp({ DKIM_DOMAIN: 'test.local', DKIM_SELECTOR: 'login2026', DKIM_PRIVATE_KEY: keyFile });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs every mail: the received message carries a DKIM-Signature that verifies with the published key', async () => {
    const { mail } = await loginMail(t, 'de');
    const signature = headerText(mail, 'DKIM-Signature');
    expect(signature).toMatch(/\bd=test\.local\b/);
    expect(signature).toMatch(/\bs=login2026\b/);
    expect(signature).toMatch(/\bh=[^;]*\bfrom\b/i);

    const result = await dkimVerify(mail.raw, { resolver });
    expect(result.results.map((r) => r.status.result)).toEqual(['pass']);

    // The same check does not pass for a message changed after signing (so this test can fail).
    const tampered = Buffer.from(mail.raw.toString('latin1').replace(/Ihr Anmeldecode/g, 'Ihr Anmeldek0de'), 'latin1');
    expect(tampered.equals(mail.raw)).toBe(false);
    const [verdict] = (await dkimVerify(tampered, { resolver })).results;
    expect(verdict.status.result).not.toBe('pass');
    expect(verdict.status.comment).toMatch(/body hash/i);
  });
});

/** The raw text of one header field (unfolded), from the message as received. */
function headerText(mail: ReceivedMail, name: string): string {
  const head = mail.raw.toString('latin1').split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  return head.split(/\r?\n/).find((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`)) ?? '';
}

describe('templates checked when the built service starts, and `mail:preview`', () => {
  let build: ServerBuild;
  let db: TestDatabase;
  const folders: string[] = [];
  const folder = (files: Record<string, string>) => {
    const dir = templateFolder(files);
    folders.push(dir);
    return dir;
  };
  const env = (extra: Record<string, string>) => ({
    NODE_ENV: 'test',
    DATABASE_URL: db.url,
    SMTP_URL: 'smtp://127.0.0.1:9',
    APP_SECRET: TEST_SECRET,
    ...extra,
  });

  beforeAll(async () => {
    [build, db] = await Promise.all([copyServerBuild(), createTestDatabase()]);
  }, 180_000);
  afterAll(async () => {
    await db?.drop();
    await build?.remove();
    for (const dir of folders) rmSync(dir, { recursive: true, force: true });
  });

  it('a template with an unknown variable stops the start (exit 1) with the file\'s name and line', async () => {
    const dir = folder({ 'fr/html.hbs': '<p>{{code}}</p>\n<p>{{#if support_address}}{{supportAddress}}{{/if}}</p>' });
    await expect(startServer(build, env({ MAIL_TEMPLATES_DIR: dir }))).rejects.toThrow(
      new RegExp(`exited with 1:[\\s\\S]*\nInvalid mail template:\n  ${join(dir, 'fr/html.hbs')}: line 2: unknown variable "supportAddress"`),
    );
  });

  it('a template that does not parse stops the start with the file\'s name', async () => {
    const dir = folder({ 'de/text.hbs': 'Ihr Code: {{code}\n' });
    await expect(startServer(build, env({ MAIL_TEMPLATES_DIR: dir }))).rejects.toThrow(
      new RegExp(`exited with 1:[\\s\\S]*${join(dir, 'de/text.hbs')}: Parse error on line 1`),
    );
  });

  it('a MAIL_DEFAULT_LOCALE without templates stops the start', async () => {
    await expect(startServer(build, env({ MAIL_DEFAULT_LOCALE: 'es' }))).rejects.toThrow(
      'MAIL_DEFAULT_LOCALE="es": no templates for this locale (available: de, en, fr;',
    );
  });

  it('mail:preview writes every locale\'s HTML and text (with the subject), including an operator\'s', async () => {
    const dir = folder({ 'de/subject.hbs': 'Eigener Betreff von {{app_name}}' });
    const out = folder({});
    const { stdout } = await promisify(execFile)(process.execPath, [join(build.dir, 'dist/mail/mail-preview.js'), '--out', out], {
      cwd: build.dir,
      env: { PATH: process.env.PATH ?? '', APP_NAME: 'Acme', MAIL_TEMPLATES_DIR: dir },
    });
    expect(stdout).toContain(`de: ${join(out, 'de')}/ (from ${join(dir, 'de/subject.hbs')}`);
    expect(readdirSync(out).sort()).toEqual(['de', 'en', 'fr', 'index.html']);
    for (const locale of ['de', 'en', 'fr']) {
      expect(readdirSync(join(out, locale)).sort()).toEqual(['mobi.html', 'mobi.txt', 'othr.html', 'othr.txt']);
      expect(readFileSync(join(out, locale, 'othr.html'), 'utf8')).toContain(`<html lang="${locale}">`);
    }
    expect(readFileSync(join(out, 'de', 'mobi.txt'), 'utf8')).toMatch(/^Subject: Eigener Betreff von Acme\n\nIhr Anmeldecode für Acme:\n\n {4}123456\n/);
    expect(readFileSync(join(out, 'en', 'othr.txt'), 'utf8')).toMatch(/^Subject: Your Acme login code\n/);
    // Like the mail the service sends: no support line without MAIL_SUPPORT_ADDRESS.
    expect(readFileSync(join(out, 'en', 'othr.txt'), 'utf8')).not.toContain('Questions?');
    expect(readFileSync(join(out, 'en', 'othr.html'), 'utf8')).not.toContain('Questions?');
  });

  it('mail:preview shows MAIL_SUPPORT_ADDRESS as the service mails it', async () => {
    const out = folder({});
    await promisify(execFile)(process.execPath, [join(build.dir, 'dist/mail/mail-preview.js'), '--out', out], {
      cwd: build.dir,
      env: { PATH: process.env.PATH ?? '', MAIL_SUPPORT_ADDRESS: 'help@acme.example' },
    });
    expect(readFileSync(join(out, 'en', 'othr.txt'), 'utf8')).toContain('Questions? Write to help@acme.example.');
    expect(readFileSync(join(out, 'en', 'othr.html'), 'utf8')).toContain('Questions? Write to help@acme.example.');
  });

  it('mail:preview reports a broken template with its file name and exits 1', async () => {
    const dir = folder({ 'en/text.hbs': 'no code here' });
    const run = promisify(execFile)(process.execPath, [join(build.dir, 'dist/mail/mail-preview.js'), '--out', folder({})], {
      cwd: build.dir,
      env: { PATH: process.env.PATH ?? '', MAIL_TEMPLATES_DIR: dir },
    });
    await expect(run).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining(`${join(dir, 'en/text.hbs')}: does not show the code`) });
  });
});
