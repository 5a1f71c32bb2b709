import { existsSync, mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import request from 'supertest';
import { errorBody, wrongCode } from './support/factories.js';
import { createTestApp, type TestApp } from './support/test-app.js';

/**
 * The sign-in and "my devices" page (WEB_UI, src/web-ui/): its HTTP answers (headers, CSP,
 * caching, off switch) through supertest, and the whole flow in a real Chromium (Debian's
 * `chromium`, driven by playwright-core) against the real app on a loopback port, with the codes
 * read from the test's SMTP server. WEB_UI_SCREENSHOTS=<folder> saves a PNG of each step.
 */

vi.setConfig({ testTimeout: 60_000, hookTimeout: 120_000 });

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const SCREENSHOTS = process.env.WEB_UI_SCREENSHOTS;
/** The flags for a headless Chromium that makes no request of its own (updates, sync, QUIC probes). */
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

describe('web UI: HTTP answers', () => {
  let t: TestApp;
  let off: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
    off = await createTestApp({ WEB_UI: 'false' }, { database: t.db });
  });
  afterAll(async () => {
    await off?.close();
    await t?.close();
  });

  it('serves the page at / as HTML that is never cached, under a CSP without any inline code', async () => {
    const res = await request(t.http).get('/').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none';script-src 'self';script-src-attr 'none';style-src 'self';img-src 'self';connect-src 'self';" +
        "base-uri 'none';form-action 'self';frame-ancestors 'none';object-src 'none'",
    );
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    // No inline script, style element or style attribute, and only this origin's assets.
    expect(res.text).toContain('<script type="module" src="/web/app.js"></script>');
    expect(res.text).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.text).not.toMatch(/<style|\sstyle=|\son[a-z]+=/i);
    expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('leaves the CSP of the API and /docs as it was (the page has its own, stricter one)', async () => {
    const api = (await request(t.http).get('/health/live').expect(200)).headers['content-security-policy'];
    expect(api).toContain("script-src 'self'");
    expect(api).toContain("default-src 'self'");
  });

  it('serves the assets under /web/ with their types, revalidated by ETag (304 when unchanged)', async () => {
    const js = await request(t.http).get('/web/app.js').expect(200);
    expect(js.headers['content-type']).toMatch(/^(text|application)\/javascript/);
    expect(js.headers['cache-control']).toBe('no-cache');
    expect(js.headers.etag).toBeTruthy();
    await request(t.http).get('/web/app.js').set('If-None-Match', js.headers.etag).expect(304);
    const css = await request(t.http).get('/web/app.css').expect(200);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    const icon = await request(t.http).get('/web/icon.svg').expect(200);
    expect(icon.headers['content-type']).toMatch(/^image\/svg\+xml/);
  });

  it('answers the JSON 404 for a file that is not there, lists no folder, and never serves a file outside it', async () => {
    const missing = await request(t.http).get('/web/nothing.js').expect(404);
    expect(missing.body).toEqual(errorBody(404, 'not_found'));
    // @fastify/static's 403 (a folder, a path out of it; /docs the same) keeps its own code, not a body error's.
    for (const path of ['/web/', '/web/%2e%2e/web-ui.ts', '/docs/%2e%2e/package.json']) {
      const res = await request(t.http).get(path);
      expect({ path, status: res.status, body: res.body }).toEqual({ path, status: 403, body: errorBody(403, 'forbidden') });
    }
    for (const path of ['/web/../web-ui.ts', '/web/%2e%2e/web-ui.ts', '/web/..%2fweb-ui.ts', '/web/%2e%2e%2f%2e%2e%2fpackage.json']) {
      const res = await request(t.http).get(path);
      expect([403, 404], path).toContain(res.status);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.text).not.toContain('registerWebUi');
    }
  });

  it('is not served with WEB_UI=false: / and /web/* are the JSON 404 of any unknown path', async () => {
    for (const path of ['/', '/web/app.js', '/web/app.css']) {
      const res = await request(off.http).get(path).expect(404);
      expect(res.body).toEqual(errorBody(404, 'not_found'));
    }
  });
});

if (!HAVE_CHROMIUM) {
  console.log(`web-ui: the browser tests are skipped: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH).`);
}

/** The second browser passes for a phone, so that the two devices differ in the list (and the screenshots). */
const PHONE_USER_AGENT =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 18_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.5 Mobile/15E148 Safari/604.1';

/** What a browser context did that it must not: console errors, CSP violations, requests to other origins. */
interface Watch {
  problems: string[];
  foreign: string[];
}

/** Records violations reported by the page itself (the event CSP fires; W3C CSP Level 3 §5.3). */
const RECORD_CSP_VIOLATIONS = `
  window.__cspViolations = [];
  document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));
`;

describe.skipIf(!HAVE_CHROMIUM)('web UI in Chromium: sign in, two devices, sign one out, log out', () => {
  let t: TestApp;
  let browser: Browser;
  let origin: string;
  const watches: Watch[] = [];
  const email = 'joe@example.com';

  beforeAll(async () => {
    t = await createTestApp({ OTP_MAX_ATTEMPTS: '3' });
    await t.app.listen(0, '127.0.0.1');
    origin = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    if (SCREENSHOTS) mkdirSync(SCREENSHOTS, { recursive: true });
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** A new browser profile (its own localStorage, so its own device) that records what it must not do. */
  async function newBrowser(viewport: { width: number; height: number }, userAgent?: string): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport, userAgent, locale: 'en-US', timezoneId: 'UTC', deviceScaleFactor: 1 });
    const watch: Watch = { problems: [], foreign: [] };
    watches.push(watch);
    context.on('request', (req) => {
      if (new URL(req.url()).origin !== origin) watch.foreign.push(req.url());
    });
    context.on('console', (message) => {
      // Chromium logs every 4xx answer to fetch; the flow causes 400, 401 and 429 on purpose.
      if (message.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|401|429)\b/.test(message.text())) {
        watch.problems.push(`console: ${message.text()}`);
      }
    });
    context.on('weberror', (error) => watch.problems.push(`page error: ${String(error.error())}`));
    await context.addInitScript(RECORD_CSP_VIOLATIONS);
    return context;
  }

  async function shot(page: Page, name: string): Promise<void> {
    if (!SCREENSHOTS) return;
    await page.mouse.move(0, 0); // no hover effect where the last click was
    await page.screenshot({ path: join(SCREENSHOTS, name), fullPage: true });
  }

  /** Text as a screen reader reads it: white space collapsed. */
  const text = async (locator: Locator) => ((await locator.textContent()) ?? '').replace(/\s+/g, ' ').trim();
  const heading = (page: Page) => page.locator('section:not([hidden]) h1');
  const alertText = async (page: Page, pattern: RegExp) => {
    await page.getByRole('alert').filter({ hasText: pattern }).waitFor();
    return page.getByRole('alert').textContent();
  };
  const statusText = async (page: Page, pattern: RegExp) => {
    await page.getByRole('status').filter({ hasText: pattern }).waitFor();
    return page.getByRole('status').textContent();
  };
  // Page-side code as strings: the tests are type-checked without the DOM library.
  const focusedId = (page: Page) => page.evaluate<string>("document.activeElement?.id ?? ''");
  const stored = (page: Page) =>
    page.evaluate<{ signIn: { token: string; uuid: string } | null; vendorUuid: string | null }>(`({
      signIn: JSON.parse(sessionStorage.getItem('session-management.sign-in') ?? 'null'),
      vendorUuid: localStorage.getItem('session-management.vendor-uuid'),
    })`);
  const violations = (page: Page) => page.evaluate<string[]>('window.__cspViolations');
  const mailsTo = async (to: string, count: number) => {
    await expect.poll(() => t.smtp.countTo(to), { timeout: 10_000 }).toBe(count);
    return t.smtp.codeFor(to);
  };
  const sessionItems = (page: Page) => page.locator('#sessions > li');

  let a: BrowserContext;
  let pageA: Page;
  let b: BrowserContext;
  let pageB: Page;

  it('signs in with the keyboard alone: email, a wrong code (attempts left), the resend cooldown, the right code', async () => {
    a = await newBrowser({ width: 800, height: 720 });
    await a.clock.install(); // the cooldown countdown runs on this clock; fast-forwarded below
    pageA = await a.newPage();
    await pageA.goto(origin);
    expect(await heading(pageA).textContent()).toBe('Sign in');

    await pageA.keyboard.press('Tab');
    expect(await focusedId(pageA)).toBe('email');
    await pageA.keyboard.type(email);
    await shot(pageA, '1-sign-in.png');
    await pageA.keyboard.press('Enter');

    await heading(pageA).filter({ hasText: 'Check your mail' }).waitFor();
    expect(await focusedId(pageA)).toBe('step-code-title');
    // The field is described by what was sent, and for how long (OTP_TTL: 300 s).
    expect(await pageA.locator('#code').getAttribute('aria-describedby')).toBe('code-sent code-hint');
    expect(await text(pageA.locator('#code-sent'))).toMatch(/^We sent a 6-digit code to joe@example\.com\. It works for 5 minutes, until \d{1,2}:\d{2} [AP]M\.$/);
    expect(await pageA.locator('#code').getAttribute('autocomplete')).toBe('one-time-code');
    const first = await mailsTo(email, 1);

    await pageA.keyboard.press('Tab');
    expect(await focusedId(pageA)).toBe('code');
    await pageA.keyboard.type(wrongCode(first));
    await pageA.keyboard.press('Enter');
    expect(await alertText(pageA, /not correct/)).toBe('That code is not correct. You have 2 attempts left.');
    expect(await pageA.locator('#code').getAttribute('aria-invalid')).toBe('true');
    await shot(pageA, '2-wrong-code.png');

    // Tab from the code field: "Sign in", then "Send a new code".
    await pageA.keyboard.press('Tab');
    await pageA.keyboard.press('Tab');
    expect(await focusedId(pageA)).toBe('resend');
    await pageA.keyboard.press('Enter');
    const cooldown = await alertText(pageA, /wait/);
    const seconds = Number(/in (\d+) seconds\.$/.exec(cooldown ?? '')?.[1]);
    expect(cooldown).toBe(`Please wait: you can ask for a new code in ${seconds} seconds.`);
    expect(seconds).toBeGreaterThanOrEqual(55);
    expect(seconds).toBeLessThanOrEqual(60);
    const resend = pageA.locator('#resend');
    expect(await resend.getAttribute('aria-disabled')).toBe('true');
    expect(await resend.textContent()).toBe(`Send a new code (${seconds} s)`);
    expect(await focusedId(pageA)).toBe('resend'); // still focused: aria-disabled, not disabled
    await shot(pageA, '3-resend-cooldown.png');
    await pageA.keyboard.press('Enter'); // ignored while cooling down
    expect(t.smtp.countTo(email)).toBe(1);

    t.clock.advance(seconds);
    await pageA.clock.fastForward(seconds * 1000);
    await expect.poll(() => resend.textContent()).toBe('Send a new code');
    expect(await resend.getAttribute('aria-disabled')).toBeNull();
    await pageA.keyboard.press('Enter');
    expect(await statusText(pageA, /new code/)).toBe(`We sent a new code to ${email}. The previous one no longer works.`);
    const second = await mailsTo(email, 2);
    expect(await focusedId(pageA)).toBe('code');
    await pageA.keyboard.type(second);
    await pageA.keyboard.press('Enter');

    await heading(pageA).filter({ hasText: 'Your devices' }).waitFor();
    expect(await sessionItems(pageA).count()).toBe(1);
    const item = sessionItems(pageA).first();
    expect(await item.locator('h3').textContent()).toBe('Browser or desktop app This device');
    const userAgent = await pageA.evaluate(() => navigator.userAgent);
    expect(await item.locator('dd').allTextContents()).toEqual(['Signed in', expect.any(String), expect.any(String), '127.0.0.1', userAgent]);
    expect(await item.getByRole('button').allTextContents()).toEqual(['Log out']);
    await shot(pageA, '4-signed-in.png');

    // The page is an `othr` device with this browser's vendor_uuid; its token is in sessionStorage.
    const { signIn, vendorUuid } = await stored(pageA);
    const current = await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${signIn!.token}`).expect(200);
    expect(current.body).toMatchObject({ uuid: signIn!.uuid, status: 'confirmed', device: { type: 'othr', vendor_uuid: vendorUuid } });
    expect(vendorUuid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('a second browser (375 px wide) signs in as another device; the first sees both and signs the second out', async () => {
    b = await newBrowser({ width: 375, height: 740 }, PHONE_USER_AGENT);
    pageB = await b.newPage();
    await pageB.goto(origin);
    await pageB.getByLabel('Email address').fill(email);
    await pageB.getByRole('button', { name: 'Send me a code' }).click();
    await heading(pageB).filter({ hasText: 'Check your mail' }).waitFor();
    const code = await mailsTo(email, 3);
    await pageB.getByLabel('6-digit code').fill(code);
    await shot(pageB, '5-phone-375px-code.png');
    await pageB.getByRole('button', { name: 'Sign in' }).click();
    await heading(pageB).filter({ hasText: 'Your devices' }).waitFor();
    expect(await sessionItems(pageB).count()).toBe(2);
    // Nothing wider than the screen.
    expect(await pageB.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(375);
    await shot(pageB, '6-phone-375px-devices.png');
    const bStored = await stored(pageB);
    expect(bStored.vendorUuid).not.toBe((await stored(pageA)).vendorUuid);

    await pageA.getByRole('button', { name: 'Refresh' }).click();
    expect(await statusText(pageA, /up to date/)).toBe('The list is up to date.');
    expect(await sessionItems(pageA).count()).toBe(2);
    expect(await sessionItems(pageA).locator('h3').allTextContents()).toEqual([
      'Browser or desktop app This device',
      'Browser or desktop app',
    ]);
    expect(await sessionItems(pageA).nth(1).locator('dd.user-agent').textContent()).toBe(PHONE_USER_AGENT);
    await shot(pageA, '7-two-devices.png');
    await sessionItems(pageA).nth(1).getByRole('button', { name: 'Sign out' }).click();
    expect(await statusText(pageA, /signed out/)).toBe('Browser or desktop app is signed out. Its next request will be refused.');
    expect(await sessionItems(pageA).count()).toBe(1);
    await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${bStored.signIn!.token}`).expect(401);
  });

  it('the signed-out browser learns it on its next request; the first logs out', async () => {
    await pageB.getByRole('button', { name: 'Refresh' }).click();
    expect(await alertText(pageB, /signed out/)).toBe('You have been signed out: this session was ended from another device, or it expired.');
    expect(await heading(pageB).textContent()).toBe('Sign in');
    expect(await pageB.getByLabel('Email address').inputValue()).toBe(email);
    expect((await stored(pageB)).signIn).toBeNull();
    await shot(pageB, '8-phone-signed-out.png');

    const { signIn } = await stored(pageA);
    await sessionItems(pageA).first().getByRole('button', { name: 'Log out' }).click();
    expect(await statusText(pageA, /logged out/)).toBe('You are logged out.');
    expect(await heading(pageA).textContent()).toBe('Sign in');
    expect((await stored(pageA)).signIn).toBeNull();
    await request(t.http).get('/sessions/current').set('Authorization', `Bearer ${signIn!.token}`).expect(401);
  });

  it('says when the code has expired, and when too many wrong codes were entered', async () => {
    const ann = 'ann@example.com';
    const c = await newBrowser({ width: 800, height: 720 });
    await c.clock.install();
    const page = await c.newPage();
    await page.goto(origin);
    await page.getByLabel('Email address').fill(ann);
    await page.getByRole('button', { name: 'Send me a code' }).click();
    await heading(page).filter({ hasText: 'Check your mail' }).waitFor();
    const code = await mailsTo(ann, 1);

    // Two wrong codes here, the last attempt used elsewhere (another tab, a script): the right code is refused.
    // The first one submitted twice at once: one request, one attempt used.
    await page.getByLabel('6-digit code').fill(wrongCode(code));
    await page.evaluate("{ const form = document.getElementById('code-form'); form.requestSubmit(); form.requestSubmit(); }");
    expect(await alertText(page, /attempts left/)).toBe('That code is not correct. You have 2 attempts left.');
    await page.getByLabel('6-digit code').fill(wrongCode(code));
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await alertText(page, /attempt left/)).toBe('That code is not correct. You have 1 attempt left.');
    const { signIn } = await stored(page);
    await request(t.http)
      .patch(`/sessions/${signIn!.uuid}`)
      .set('Authorization', `Bearer ${signIn!.token}`)
      .send({ otp_code: wrongCode(code) })
      .expect(400);
    await page.getByLabel('6-digit code').fill(code);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await alertText(page, /Too many/)).toBe('Too many wrong codes were entered for this sign-in. Ask for a new code to try again.');
    expect(await heading(page).textContent()).toBe('Sign in');
    await shot(page, '9-too-many-attempts.png');

    // A new login of this browser: refused during the cooldown (the button counts down), then sent; its code used too late.
    await page.getByRole('button', { name: 'Send me a code' }).click();
    expect(await alertText(page, /wait/)).toBe('Please wait: you can ask for a new code in 60 seconds.');
    expect(await page.locator('#email-form button').textContent()).toBe('Send me a code (60 s)');
    t.clock.advance(60);
    await page.clock.fastForward(60_000);
    await expect.poll(() => page.locator('#email-form button').textContent()).toBe('Send me a code');
    await page.getByRole('button', { name: 'Send me a code' }).click();
    await heading(page).filter({ hasText: 'Check your mail' }).waitFor();
    const late = await mailsTo(ann, 2);
    t.clock.advance(301);
    await page.getByLabel('6-digit code').fill(late);
    await page.getByRole('button', { name: 'Sign in' }).click();
    expect(await alertText(page, /expired/)).toBe('This code has expired. Ask for a new code to sign in.');
    expect(await heading(page).textContent()).toBe('Sign in');
    await c.close();
  });

  it('fits a 320 px screen with a long email address: the address wraps, nothing scrolls sideways', async () => {
    const narrow = await newBrowser({ width: 320, height: 640 });
    try {
      const page = await narrow.newPage();
      // No space or hyphen: nothing where a browser would break the line by itself.
      const longEmail = `averylonglocalpartwithoutanyplacetobreak${Date.now()}@anunusuallylongsubdomainname.example.com`;
      await page.goto(origin);
      await page.getByLabel('Email address').fill(longEmail);
      await page.getByRole('button', { name: 'Send me a code' }).click();
      await heading(page).filter({ hasText: 'Check your mail' }).waitFor();
      expect(await text(page.locator('#code-email'))).toBe(longEmail);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(320);
      await shot(page, '10-narrow-320px-long-email-code.png');
      await page.getByLabel('6-digit code').fill(await mailsTo(longEmail, 1));
      await page.getByRole('button', { name: 'Sign in' }).click();
      await heading(page).filter({ hasText: 'Your devices' }).waitFor();
      expect(await text(page.locator('#account-email'))).toBe(longEmail);
      expect(await page.evaluate<number>('document.documentElement.scrollWidth')).toBeLessThanOrEqual(320);
      await shot(page, '11-narrow-320px-long-email-devices.png');
    } finally {
      await narrow.close();
    }
  });

  it('met no CSP violation, console error or request to another origin (and would have noticed one)', async () => {
    for (const page of [pageA, pageB]) expect(await violations(page)).toEqual([]);
    expect(watches.map((w) => w.problems)).toEqual(watches.map(() => []));
    expect(watches.map((w) => w.foreign)).toEqual(watches.map(() => []));
    await a.close();
    await b.close();

    // The watch works: an inline style and a foreign image are blocked, reported and seen.
    const canary = await newBrowser({ width: 400, height: 300 });
    const page = await canary.newPage();
    await page.goto(origin);
    await page.evaluate(`{
      const style = document.createElement('style');
      style.textContent = 'body { color: red }';
      document.head.append(style);
      const img = document.createElement('img');
      img.src = 'https://example.com/pixel.png';
      document.body.append(img);
    }`);
    await expect.poll(() => violations(page)).toEqual(['style-src-elem inline', 'img-src https://example.com/pixel.png']);
    const watch = watches.at(-1)!;
    expect(watch.problems.some((p) => p.includes('Content Security Policy'))).toBe(true);
    expect(watch.foreign).toEqual(['https://example.com/pixel.png']); // seen, though CSP blocked it
    await canary.close();
  });
});
