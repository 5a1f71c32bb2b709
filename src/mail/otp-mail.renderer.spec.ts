import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '../config/environment.js';
import { DEVICE_TYPES } from '../sessions/entities/device.entity.js';
import { OtpMailRenderer, type OtpMailRendererSettings } from './otp-mail.renderer.js';

const BUILT_IN: OtpMailRendererSettings = { templatesDir: null, defaultLocale: 'en', appName: 'Acme Cloud', supportAddress: null };
const NBSP = '\u00a0';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'mail-templates-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `<dir>/<path>`. */
function template(path: string, source: string): string {
  const file = join(dir, path);
  mkdirSync(join(file, '..'), { recursive: true });
  writeFileSync(file, source);
  return file;
}

function loadError(settings: Partial<OtpMailRendererSettings> = {}): string {
  try {
    OtpMailRenderer.load({ ...BUILT_IN, templatesDir: dir, ...settings });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigurationError);
    return (error as Error).message;
  }
  throw new Error('OtpMailRenderer.load did not throw');
}

describe('built-in login emails', () => {
  const renderer = OtpMailRenderer.load({ ...BUILT_IN, supportAddress: 'help@acme.example' });

  it('come in English, German and French', () => {
    expect(renderer.locales).toEqual(['de', 'en', 'fr']);
  });

  describe.each(['en', 'de', 'fr'])('%s', (locale) => {
    it.each(DEVICE_TYPES)('for %s: the code and minutes in both bodies, not the code in the subject', (deviceType) => {
      const mail = renderer.render({ code: '402917', validMinutes: 5, locale, deviceType });
      expect(mail.subject).toContain('Acme Cloud');
      expect(mail.subject).not.toContain('402917');
      expect(mail.subject).not.toMatch(/\s{2}|\n/);
      for (const body of [mail.text, mail.html]) {
        expect(body).toContain('402917');
        expect(body).toContain(`5${NBSP}`);
        expect(body).toContain('Acme Cloud');
        expect(body).toContain('help@acme.example');
      }
      expect(mail.html).toContain(`<html lang="${locale}">`);
      // No link, image, remote resource or tracking pixel.
      expect(mail.html).not.toMatch(/<a\b|<img\b|<link\b|<script\b|\bsrc=|url\(|https?:\/\//i);
      expect(mail.text).not.toMatch(/https?:\/\//i);
    });

    it('leaves out the support sentence when no address is configured', () => {
      const without = OtpMailRenderer.load(BUILT_IN).render({ code: '402917', validMinutes: 5, locale, deviceType: 'othr' });
      const withIt = renderer.render({ code: '402917', validMinutes: 5, locale, deviceType: 'othr' });
      expect(without.text.length).toBeLessThan(withIt.text.length);
      expect(without.text).not.toContain('help@');
      expect(without.html).not.toContain('help@');
    });

    it('escapes every value it shows in the HTML part, and only there', () => {
      const hostile = OtpMailRenderer.load({ ...BUILT_IN, appName: `<b>"Tom" & 'Jerry'</b>`, supportAddress: '<script>@x' });
      const mail = hostile.render({ code: '<i>1</i>', validMinutes: 5, locale, deviceType: 'othr' });
      expect(mail.html).not.toMatch(/<b>|<script>|<i>/);
      expect(mail.html).toContain('&lt;b&gt;&quot;Tom&quot; &amp; &#x27;Jerry&#x27;&lt;/b&gt;');
      expect(mail.html).toContain('&lt;script&gt;@x');
      expect(mail.html).toContain('&lt;i&gt;1&lt;/i&gt;');
      expect(mail.text).toContain(`<b>"Tom" & 'Jerry'</b>`);
      expect(mail.subject).toContain(`<b>"Tom" & 'Jerry'</b>`);
    });
  });

  it.each([
    ['en', 'Your Acme Cloud login code', `valid for 1${NBSP}minute.`, `valid for 10${NBSP}minutes.`],
    ['de', 'Ihr Anmeldecode für Acme Cloud', `Er ist 1${NBSP}Minute lang gültig.`, `Er ist 10${NBSP}Minuten lang gültig.`],
    ['fr', 'Votre code de connexion à Acme Cloud', `valable 1${NBSP}minute.`, `valable 10${NBSP}minutes.`],
  ])('%s: subject, and singular and plural minutes', (locale, subject, one, ten) => {
    expect(renderer.render({ code: '1', validMinutes: 1, locale, deviceType: 'othr' }).subject).toBe(subject);
    expect(renderer.render({ code: '1', validMinutes: 1, locale, deviceType: 'othr' }).text).toContain(one);
    expect(renderer.render({ code: '1', validMinutes: 10, locale, deviceType: 'othr' }).text).toContain(ten);
  });

  it('addresses the reader formally in German (Sie) and French (vous)', () => {
    const de = renderer.render({ code: '1', validMinutes: 5, locale: 'de', deviceType: 'mobi' }).text;
    const fr = renderer.render({ code: '1', validMinutes: 5, locale: 'fr', deviceType: 'mobi' }).text;
    expect(de).toContain('Geben Sie');
    expect(de).not.toMatch(/(?<!\p{L})(du|dein|deine|dich|dir)(?!\p{L})/iu);
    expect(fr).toContain('vous');
    expect(fr).not.toMatch(/(?<!\p{L})(tu|ton|ta|tes|toi)(?!\p{L})/iu);
  });

  it('names the device type the login was started on', () => {
    expect(renderer.render({ code: '1', validMinutes: 5, locale: 'en', deviceType: 'mobi' }).text).toContain('from a mobile app');
    expect(renderer.render({ code: '1', validMinutes: 5, locale: 'en', deviceType: 'othr' }).text).toContain('web browser');
  });

  it('renders a locale that is not available (any more) in the default one', () => {
    expect(renderer.render({ code: '1', validMinutes: 5, locale: 'es', deviceType: 'othr' }).subject).toBe('Your Acme Cloud login code');
  });

  it('negotiates among its locales with MAIL_DEFAULT_LOCALE as the fallback', () => {
    const german = OtpMailRenderer.load({ ...BUILT_IN, defaultLocale: 'de' });
    expect(german.negotiate('fr-CA;q=0.9, en;q=0.8')).toBe('fr');
    expect(german.negotiate('es')).toBe('de');
    expect(german.negotiate(undefined)).toBe('de');
  });
});

describe('MAIL_TEMPLATES_DIR', () => {
  it('overrides one built-in file of one locale and keeps the others', () => {
    template('de/subject.hbs', 'Anmeldung bei {{app_name}}\n');
    const renderer = OtpMailRenderer.load({ ...BUILT_IN, templatesDir: dir });
    const de = renderer.render({ code: '402917', validMinutes: 5, locale: 'de', deviceType: 'othr' });
    expect(de.subject).toBe('Anmeldung bei Acme Cloud');
    expect(de.text).toContain('Ihr Anmeldecode für Acme Cloud');
    expect(renderer.render({ code: '1', validMinutes: 5, locale: 'en', deviceType: 'othr' }).subject).toBe('Your Acme Cloud login code');
    expect(renderer.files.get('de')).toMatchObject({ subject: join(dir, 'de/subject.hbs') });
  });

  it('adds a locale that has all three files, which negotiation then finds', () => {
    template('es/subject.hbs', 'Tu código de {{app_name}}');
    template('es/text.hbs', 'Código: {{code}} ({{valid_minutes}} min)');
    template('es/html.hbs', '<p lang="{{locale}}">Código: {{code}}</p>');
    const renderer = OtpMailRenderer.load({ ...BUILT_IN, templatesDir: dir, defaultLocale: 'es' });
    expect(renderer.locales).toEqual(['de', 'en', 'es', 'fr']);
    expect(renderer.negotiate('es-MX')).toBe('es');
    expect(renderer.render({ code: '402917', validMinutes: 5, locale: 'es', deviceType: 'othr' })).toEqual({
      subject: 'Tu código de Acme Cloud',
      text: 'Código: 402917 (5 min)',
      html: '<p lang="es">Código: 402917</p>',
    });
  });

  it('escapes every variable in an operator\'s HTML template', () => {
    template(
      'en/html.hbs',
      '{{code}}|{{valid_minutes}}|{{app_name}}|{{device_type}}|{{locale}}|{{#if support_address}}{{support_address}}{{/if}}',
    );
    const renderer = OtpMailRenderer.load({ ...BUILT_IN, templatesDir: dir, appName: '<&>', supportAddress: '"a"@b' });
    expect(renderer.render({ code: '<c>', validMinutes: 5, locale: 'en', deviceType: 'mobi' }).html).toBe(
      '&lt;c&gt;|5|&lt;&amp;&gt;|mobi|en|&quot;a&quot;@b',
    );
  });

  it.each([
    ['de/text.hbs', 'Code: {{code', 'de/text.hbs: Parse error on line 1'],
    ['de/html.hbs', '{{#if code}}<p>{{code}}</p>', 'de/html.hbs: '],
    ['de/text.hbs', '{{code}} {{app}}', 'de/text.hbs: line 1: unknown variable "app"'],
    ['fr/html.hbs', '{{code}}{{#if support_address}}\n{{user.name}}{{/if}}', 'fr/html.hbs: line 2: unknown variable "user.name"'],
    ['en/html.hbs', '<p>{{{code}}}</p>', 'en/html.hbs: line 1: {{{…}}} writes a value without HTML escaping'],
    ['en/text.hbs', 'Your code is on its way.', 'en/text.hbs: does not show the code'],
    ['en/html.hbs', '{{code}}{{> footer}}', 'en/html.hbs: line 1: partials'],
    ['en/html.hbs', '{{code}}{{uppercase app_name}}', 'en/html.hbs: '],
    ['en/body.hbs', '{{code}}', 'en/body.hbs: unknown file; a locale\'s templates are subject.hbs, text.hbs, html.hbs'],
    ['german/text.hbs', '{{code}}', 'german: expected a folder named after a locale'],
    ['de_DE/text.hbs', '{{code}}', 'de_DE: expected a folder named after a locale'],
    ['es/text.hbs', '{{code}}', 'es: missing subject.hbs, html.hbs'],
  ])('%s with %j stops the start, naming the file', (path, source, message) => {
    template(path, source);
    const error = loadError();
    expect(error).toContain(join(dir, message.split(':')[0]));
    expect(error).toContain(message);
  });

  it('refuses a folder that does not exist, naming MAIL_TEMPLATES_DIR', () => {
    expect(loadError({ templatesDir: join(dir, 'absent') })).toContain(`MAIL_TEMPLATES_DIR="${join(dir, 'absent')}": cannot read this folder (ENOENT)`);
  });

  it('refuses a MAIL_DEFAULT_LOCALE without templates', () => {
    expect(loadError({ defaultLocale: 'es' })).toContain('MAIL_DEFAULT_LOCALE="es": no templates for this locale (available: de, en, fr');
  });

  it('skips dot files (editor and version-control leftovers)', () => {
    template('.git/config', 'x');
    template('de/.subject.hbs.swp', 'x');
    expect(OtpMailRenderer.load({ ...BUILT_IN, templatesDir: dir }).locales).toEqual(['de', 'en', 'fr']);
  });
});
