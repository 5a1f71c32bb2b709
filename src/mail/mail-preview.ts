import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadAppConfig } from '../config/app-config.js';
import { loadDotEnv } from '../config/dotenv.js';
import { ConfigurationError } from '../config/environment.js';
import { DEVICE_TYPES } from '../sessions/entities/device.entity.js';
import { OtpMailRenderer } from './otp-mail.renderer.js';
import { SAMPLE_VARIABLES } from './otp-mail.template.js';

/**
 * `npm run mail:preview [-- --out <folder>]`: renders the login email in every available locale
 * (built-in, overridden and added by MAIL_TEMPLATES_DIR, read from the environment and `.env` as
 * the service does) for each device type, and writes `<out>/<locale>/<device>.html` and `.txt`
 * (the text starts with the subject) plus `<out>/index.html` linking them all. The same checks as
 * at start apply: a broken template is reported with its file name and nothing is written.
 */
function main(): void {
  const { values } = parseArgs({ options: { out: { type: 'string', default: 'mail-preview' } } });
  loadDotEnv();
  // Only the mail settings matter here: production-only requirements (APP_SECRET, SMTP_URL) are not.
  const config = loadAppConfig({ ...process.env, NODE_ENV: 'development' });
  const renderer = OtpMailRenderer.load({
    templatesDir: config.mail.templatesDir,
    defaultLocale: config.mail.defaultLocale,
    appName: config.appName,
    supportAddress: config.mail.supportAddress, // as the service mails it: no support line when unset
  });
  const out = resolve(values.out);
  const links: string[] = [];
  for (const locale of renderer.locales) {
    mkdirSync(join(out, locale), { recursive: true });
    for (const deviceType of DEVICE_TYPES) {
      const mail = renderer.render({ code: SAMPLE_VARIABLES.code, validMinutes: Math.ceil(config.otp.ttl / 60), locale, deviceType });
      writeFileSync(join(out, locale, `${deviceType}.html`), mail.html);
      writeFileSync(join(out, locale, `${deviceType}.txt`), `Subject: ${mail.subject}\n\n${mail.text}`);
      links.push(
        `<li>${locale} ${deviceType}: <a href="${locale}/${deviceType}.html">HTML</a>, <a href="${locale}/${deviceType}.txt">text</a> — ${escapeHtml(mail.subject)}</li>`,
      );
    }
    const files = renderer.files.get(locale)!;
    process.stdout.write(`${locale}: ${join(out, locale)}/ (from ${Object.values(files).join(', ')})\n`);
  }
  writeFileSync(join(out, 'index.html'), `<!doctype html><meta charset="utf-8"><title>Login email previews</title><ul>\n${links.join('\n')}\n</ul>\n`);
  process.stdout.write(`Open ${join(out, 'index.html')}\n`);
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

try {
  main();
} catch (error) {
  process.stderr.write(`${error instanceof ConfigurationError ? error.message : error instanceof Error ? error.stack : String(error)}\n`);
  process.exit(1);
}
