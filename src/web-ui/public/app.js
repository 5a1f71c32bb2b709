// @ts-check
// The sign-in and "my devices" page. Plain JavaScript, no build step, no dependency: it calls only
// the public JSON API of this service (the same calls a web team would make) and builds the DOM with
// textContent, never innerHTML, so it runs under the page's CSP (script-src 'self', no inline code).
// Checked by `npm run typecheck` (tsconfig.web.json: checkJs with the DOM types).

/**
 * @typedef {{ uuid: string, type: 'mobi' | 'othr', vendor_uuid: string | null }} Device
 * @typedef {{ uuid: string, status: string, user: { uuid: string, email: string }, device: Device,
 *   created_at: string, otp_expires_at: string, confirmed_at: string | null, expires_at: string | null,
 *   last_seen_at: string | null, client_ip: string | null, user_agent: string | null, current: boolean }} SessionInfo
 * @typedef {{ status: number, body: Record<string, any>, retryAfter: number | null }} ApiAnswer
 * @typedef {{ token: string, uuid: string, email: string, otpExpiresAt: string, otpTtl: number, confirmed: boolean }} SignIn
 */

/** Where this tab keeps its sign-in (token included): sessionStorage, so it ends with the tab. */
const SIGN_IN_KEY = 'session-management.sign-in';
/** This browser's device id (RFC 9562 UUIDv4): localStorage, so every tab of the browser is one device. */
const VENDOR_UUID_KEY = 'session-management.vendor-uuid';

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: 'short' });

/** @param {string} id */
function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`#${id} is missing from index.html`);
  return element;
}

const ui = {
  alert: byId('alert'),
  status: byId('status'),
  steps: { email: byId('step-email'), code: byId('step-code'), account: byId('step-account') },
  emailForm: /** @type {HTMLFormElement} */ (byId('email-form')),
  email: /** @type {HTMLInputElement} */ (byId('email')),
  codeForm: /** @type {HTMLFormElement} */ (byId('code-form')),
  code: /** @type {HTMLInputElement} */ (byId('code')),
  codeEmail: byId('code-email'),
  codeExpiry: /** @type {HTMLTimeElement} */ (byId('code-expiry')),
  codeValidity: byId('code-validity'),
  resend: /** @type {HTMLButtonElement} */ (byId('resend')),
  restart: byId('restart'),
  accountEmail: byId('account-email'),
  accountExpiry: /** @type {HTMLTimeElement} */ (byId('account-expiry')),
  refresh: byId('refresh'),
  sessions: byId('sessions'),
};

// ---- storage -------------------------------------------------------------------------------

/** @returns {SignIn | null} */
function loadSignIn() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SIGN_IN_KEY) ?? 'null');
    return saved && typeof saved.token === 'string' && typeof saved.uuid === 'string' ? saved : null;
  } catch {
    return null;
  }
}

/** @param {SignIn | null} signIn */
function saveSignIn(signIn) {
  if (signIn) sessionStorage.setItem(SIGN_IN_KEY, JSON.stringify(signIn));
  else sessionStorage.removeItem(SIGN_IN_KEY);
}

/**
 * The `vendor_uuid` this browser sends as an `othr` device: made once and kept in localStorage, so
 * that two browsers (or two browser profiles) are two devices with a session each, and a new login
 * from this browser replaces this browser's previous session only. Not a secret: the API never
 * hands out a token for an email and vendor UUID.
 */
function vendorUuid() {
  let uuid = localStorage.getItem(VENDOR_UUID_KEY);
  if (!uuid || !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid)) {
    uuid = randomUuid();
    localStorage.setItem(VENDOR_UUID_KEY, uuid);
  }
  return uuid;
}

/** A version 4 UUID; crypto.randomUUID exists only in secure contexts (HTTPS, localhost). */
function randomUuid() {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---- API -----------------------------------------------------------------------------------

/**
 * One call to the API. Never throws: a network failure is status 0.
 * @param {string} method
 * @param {string} path
 * @param {{ token?: string, body?: unknown }} [options]
 * @returns {Promise<ApiAnswer>}
 */
async function api(method, path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  try {
    const response = await fetch(path, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
      credentials: 'omit', // the bearer token is the only credential
    });
    const text = await response.text();
    let body = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      // not JSON (a proxy's error page): the status says enough
    }
    const retryAfter = Number(response.headers.get('Retry-After'));
    return { status: response.status, body, retryAfter: Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null };
  } catch {
    return { status: 0, body: {}, retryAfter: null };
  }
}

// ---- messages ------------------------------------------------------------------------------

/** @param {string} text announced at once (role=alert) */
function showError(text) {
  ui.status.textContent = '';
  ui.alert.textContent = text;
}

/** @param {string} text announced when the reader is idle (role=status) */
function showInfo(text) {
  ui.alert.textContent = '';
  ui.status.textContent = text;
}

function clearMessages() {
  ui.alert.textContent = '';
  ui.status.textContent = '';
  for (const input of [ui.email, ui.code]) input.removeAttribute('aria-invalid');
}

/** @param {HTMLInputElement} input @param {string} text */
function fieldError(input, text) {
  input.setAttribute('aria-invalid', 'true');
  showError(text);
  input.focus();
}

/** A message for answers every call can get. @param {ApiAnswer} answer */
function generalError(answer) {
  if (answer.status === 0) return 'The service did not answer. Check your connection and try again.';
  if (answer.status === 429) return `Too many requests. Try again in ${duration(answer.retryAfter ?? 60)}.`;
  if (answer.status >= 500) return 'The service is unavailable right now. Try again in a moment.';
  return `Something went wrong (${answer.body.code ?? answer.status}). Try again.`;
}

/**
 * A send refused with 429: the device's cooldown, the address's hourly cap or the per-IP limit
 * (the API's `code` is the same; `Retry-After` says how long).
 * @param {number} seconds
 */
function waitMessage(seconds) {
  return `Please wait: you can ask for a new code in ${duration(seconds)}.`;
}

/** "45 seconds", "5 minutes" (rounded up). @param {number} seconds */
function duration(seconds) {
  if (seconds < 90) return `${seconds} ${seconds === 1 ? 'second' : 'seconds'}`;
  return `${Math.ceil(seconds / 60)} minutes`;
}

/** @param {HTMLTimeElement} element @param {string} iso @param {Intl.DateTimeFormat} format */
function setTime(element, iso, format) {
  element.dateTime = iso;
  element.textContent = format.format(new Date(iso));
}

// ---- cooldowns -----------------------------------------------------------------------------

/** @type {Map<HTMLButtonElement, number>} */
const cooldowns = new Map();

/**
 * Keeps `button` unusable for `seconds` (the API's Retry-After), its label counting down. It stays
 * focusable (aria-disabled, not disabled) so that keyboard focus is not lost.
 * @param {HTMLButtonElement} button
 * @param {number} seconds
 */
function coolDown(button, seconds) {
  endCooldown(button);
  const label = button.dataset.label ?? button.textContent ?? '';
  button.dataset.label = label;
  const until = Date.now() + seconds * 1000;
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) return endCooldown(button);
    button.textContent = `${label} (${left} s)`;
  };
  button.setAttribute('aria-disabled', 'true');
  tick();
  cooldowns.set(button, window.setInterval(tick, 1000));
}

/** @param {HTMLButtonElement} button */
function endCooldown(button) {
  window.clearInterval(cooldowns.get(button));
  cooldowns.delete(button);
  button.removeAttribute('aria-disabled');
  if (button.dataset.label) button.textContent = button.dataset.label;
}

/** @param {HTMLButtonElement} button */
function coolingDown(button) {
  return button.getAttribute('aria-disabled') === 'true';
}

// ---- one action at a time -----------------------------------------------------------------

let busy = false;

/**
 * Wraps an event handler so that a second click or Enter while its calls are in flight is ignored
 * (two quick submits of a wrong code would use two attempts).
 * @param {(event: Event) => Promise<unknown>} action
 * @returns {(event: Event) => Promise<void>}
 */
function exclusive(action) {
  return async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    try {
      await action(event);
    } finally {
      busy = false;
    }
  };
}

// ---- steps ---------------------------------------------------------------------------------

/** @param {'email' | 'code' | 'account'} name @param {{ focus?: boolean }} [options] */
function showStep(name, options = { focus: true }) {
  for (const [key, section] of Object.entries(ui.steps)) section.hidden = key !== name;
  if (options.focus) ui.steps[name].querySelector('h1')?.focus();
}

/** @param {string} [email] */
function toEmailStep(email) {
  saveSignIn(null);
  if (email) ui.email.value = email;
  ui.code.value = '';
  showStep('email');
}

/** @param {SignIn} signIn */
function toCodeStep(signIn) {
  ui.codeEmail.textContent = signIn.email;
  ui.codeValidity.textContent = signIn.otpTtl > 0 ? duration(signIn.otpTtl) : 'a few minutes';
  setTime(ui.codeExpiry, signIn.otpExpiresAt, timeOnly);
  showStep('code');
}

/** Signed out by someone else, or the session ended: back to the start, saying so. @param {string} text */
function signedOut(text) {
  toEmailStep(loadSignIn()?.email);
  showError(text);
}

// ---- step 1: email -------------------------------------------------------------------------

const emailButton = /** @type {HTMLButtonElement} */ (ui.emailForm.querySelector('button[type=submit]'));

ui.emailForm.addEventListener('submit', exclusive(async () => {
  if (coolingDown(emailButton)) return;
  clearMessages();
  const email = ui.email.value.trim();
  if (!email || !ui.email.checkValidity()) return fieldError(ui.email, 'Enter your email address, like name@example.com.');
  const answer = await api('POST', '/sessions?mode=email', {
    body: { user: { email }, device: { type: 'othr', vendor_uuid: vendorUuid() } },
  });
  if (answer.status === 201 || answer.status === 200) {
    const { token, uuid, user, created_at: createdAt, otp_expires_at: otpExpiresAt } = answer.body;
    // The code's lifetime from two server times: right even when this computer's clock is not.
    const otpTtl = Math.round((Date.parse(otpExpiresAt) - Date.parse(createdAt)) / 1000);
    const signIn = { token, uuid, email: user.email, otpExpiresAt, otpTtl, confirmed: false };
    saveSignIn(signIn);
    ui.code.value = '';
    toCodeStep(signIn);
    return;
  }
  if (answer.status === 400 && answer.body.code === 'validation_failed') {
    return fieldError(ui.email, 'Enter a valid email address, like name@example.com.');
  }
  if (answer.status === 429 && answer.body.code === 'rate_limited') {
    const seconds = answer.retryAfter ?? 60;
    coolDown(emailButton, seconds);
    return showError(waitMessage(seconds));
  }
  showError(generalError(answer));
}));

// The cooldown belongs to the address (device) that was refused, not to the next one typed.
ui.email.addEventListener('input', () => endCooldown(emailButton));

// ---- step 2: the code ----------------------------------------------------------------------

ui.codeForm.addEventListener('submit', exclusive(async () => {
  clearMessages();
  const signIn = loadSignIn();
  if (!signIn) return toEmailStep();
  const code = ui.code.value.replace(/\s+/g, '');
  if (!/^[0-9]{6}$/.test(code)) return fieldError(ui.code, 'Enter the 6 digits from the email.');
  const answer = await api('PATCH', `/sessions/${encodeURIComponent(signIn.uuid)}`, { token: signIn.token, body: { otp_code: code } });
  if (answer.status === 200) {
    saveSignIn({ ...signIn, confirmed: true });
    endCooldown(ui.resend);
    await toAccountStep();
    return;
  }
  switch (answer.body.code) {
    case 'otp_invalid': {
      const left = Number(answer.body.attempts_remaining ?? 0);
      if (left > 0) {
        ui.code.select();
        return fieldError(ui.code, `That code is not correct. You have ${left} ${left === 1 ? 'attempt' : 'attempts'} left.`);
      }
      return restartWith(signIn, 'That code is not correct, and it was the last attempt. Ask for a new code to try again.');
    }
    case 'otp_expired':
      return restartWith(signIn, 'This code has expired. Ask for a new code to sign in.');
    case 'otp_attempts_exceeded':
      return restartWith(signIn, 'Too many wrong codes were entered for this sign-in. Ask for a new code to try again.');
    case 'session_expired':
    case 'session_revoked':
    case 'session_not_found':
    case 'unauthorized':
      return restartWith(signIn, 'This sign-in has ended. Ask for a new code to start again.');
    case 'validation_failed':
      return fieldError(ui.code, 'Enter the 6 digits from the email.');
    default:
      showError(generalError(answer));
  }
}));

/** Back to step 1 with the address filled in. @param {SignIn} signIn @param {string} text */
function restartWith(signIn, text) {
  endCooldown(ui.resend);
  toEmailStep(signIn.email);
  showError(text);
}

ui.resend.addEventListener('click', exclusive(async () => {
  if (coolingDown(ui.resend)) return;
  clearMessages();
  const signIn = loadSignIn();
  if (!signIn) return toEmailStep();
  const answer = await api('POST', `/sessions/${encodeURIComponent(signIn.uuid)}/otp`, { token: signIn.token });
  if (answer.status === 202) {
    const renewed = { ...signIn, otpExpiresAt: answer.body.otp_expires_at };
    saveSignIn(renewed);
    setTime(ui.codeExpiry, renewed.otpExpiresAt, timeOnly);
    ui.code.value = '';
    showInfo(`We sent a new code to ${signIn.email}. The previous one no longer works.`);
    ui.code.focus();
    return;
  }
  if (answer.status === 429 && answer.body.code === 'rate_limited') {
    const seconds = answer.retryAfter ?? 60;
    coolDown(ui.resend, seconds);
    return showError(waitMessage(seconds));
  }
  if (answer.body.code === 'session_not_pending' || answer.status === 401 || answer.status === 404) {
    return restartWith(signIn, 'This sign-in can no longer get new codes (its code expired or was used). Ask for a new code to start again.');
  }
  showError(generalError(answer));
}));

ui.restart.addEventListener('click', () => {
  clearMessages();
  endCooldown(ui.resend);
  toEmailStep(loadSignIn()?.email);
});

// ---- step 3: signed in ---------------------------------------------------------------------

const DEVICE_NAMES = { othr: 'Browser or desktop app', mobi: 'Mobile app' };

/** Shows the account step with fresh data; a refused token means this device was signed out. */
async function toAccountStep(options = { focus: true }) {
  const signIn = loadSignIn();
  if (!signIn) return toEmailStep();
  const current = await api('GET', '/sessions/current', { token: signIn.token });
  if (current.status === 401) return signedOut('You have been signed out: this session was ended from another device, or it expired.');
  if (current.status !== 200) return showError(generalError(current));
  const list = await api('GET', '/sessions', { token: signIn.token });
  if (list.status === 401) return signedOut('You have been signed out: this session was ended from another device, or it expired.');
  if (list.status !== 200) return showError(generalError(list));

  const session = /** @type {SessionInfo} */ (current.body);
  ui.accountEmail.textContent = session.user.email;
  if (session.expires_at) setTime(ui.accountExpiry, session.expires_at, dateTime);
  else ui.accountExpiry.textContent = 'when you log out';
  renderSessions(/** @type {SessionInfo[]} */ (list.body.sessions ?? []));
  showStep('account', options);
}

/** @param {SessionInfo[]} sessions */
function renderSessions(sessions) {
  // This device first, then the others newest first (the API's order).
  const ordered = [...sessions].sort((a, b) => Number(b.current) - Number(a.current));
  ui.sessions.replaceChildren(...ordered.map(sessionItem));
}

/** @param {SessionInfo} session */
function sessionItem(session) {
  const name = DEVICE_NAMES[session.device.type] ?? session.device.type;
  const titleId = `session-${session.uuid}`;
  const title = el('h3', { id: titleId }, name);
  if (session.current) title.append(' ', el('span', { class: 'badge' }, 'This device'));
  const details = el(
    'dl',
    {},
    ...detail('Status', session.status === 'pending' ? 'Waiting for its code' : 'Signed in'),
    ...detail('Since', session.confirmed_at ? dateTime.format(new Date(session.confirmed_at)) : 'not signed in yet'),
    ...detail('Last seen', session.last_seen_at ? dateTime.format(new Date(session.last_seen_at)) : 'not since signing in'),
    ...detail('IP address', session.client_ip ?? 'unknown'),
    ...detail('User-Agent', session.user_agent ?? 'unknown'),
  );
  const button = session.current
    ? el('button', { type: 'button', 'data-action': 'logout' }, 'Log out')
    : el('button', { type: 'button', class: 'secondary', 'data-action': 'sign-out', 'data-uuid': session.uuid, 'aria-describedby': titleId }, 'Sign out');
  return el('li', { class: session.current ? 'session current' : 'session', 'aria-labelledby': titleId }, title, details, button);
}

/** @param {string} term @param {string} value */
function detail(term, value) {
  return [el('dt', {}, term), el('dd', term === 'User-Agent' ? { class: 'user-agent' } : {}, value)];
}

/**
 * @param {string} tag
 * @param {Record<string, string>} attributes
 * @param {(Node | string)[]} children
 */
function el(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  element.append(...children);
  return element;
}

ui.sessions.addEventListener('click', exclusive(async (event) => {
  const button = /** @type {HTMLElement | null} */ (event.target instanceof Element ? event.target.closest('button') : null);
  if (!button) return;
  if (button.dataset.action === 'logout') return logOut();
  if (button.dataset.action !== 'sign-out' || !button.dataset.uuid) return;
  clearMessages();
  const signIn = loadSignIn();
  if (!signIn) return toEmailStep();
  const name = button.closest('li')?.querySelector('h3')?.textContent ?? 'The device';
  const answer = await api('DELETE', `/sessions/${encodeURIComponent(button.dataset.uuid)}`, { token: signIn.token });
  if (answer.status === 401) return signedOut('You have been signed out: this session was ended from another device, or it expired.');
  if (answer.status !== 204 && answer.status !== 404) return showError(generalError(answer));
  await toAccountStep({ focus: true });
  showInfo(`${name} is signed out. Its next request will be refused.`);
}));

ui.refresh.addEventListener('click', exclusive(async () => {
  clearMessages();
  await toAccountStep({ focus: false });
  if (!ui.steps.account.hidden) showInfo('The list is up to date.');
}));

async function logOut() {
  clearMessages();
  const signIn = loadSignIn();
  if (signIn) {
    const answer = await api('DELETE', `/sessions/${encodeURIComponent(signIn.uuid)}`, { token: signIn.token });
    // 401: the session had already ended; either way this tab forgets it.
    if (answer.status !== 204 && answer.status !== 401 && answer.status !== 404) return showError(generalError(answer));
  }
  toEmailStep(signIn?.email);
  showInfo('You are logged out.');
}

// ---- start ---------------------------------------------------------------------------------

const saved = loadSignIn();
if (saved?.confirmed) {
  for (const section of Object.values(ui.steps)) section.hidden = true; // until the API has answered
  void toAccountStep({ focus: false });
} else if (saved && Date.parse(saved.otpExpiresAt) > Date.now()) {
  toCodeStep(saved);
} else {
  saveSignIn(null);
  showStep('email', { focus: false });
}
