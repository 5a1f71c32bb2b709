import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigurationError } from '../config/environment.js';
import type { DeviceType } from '../sessions/entities/device.entity.js';
import { negotiateLocale } from './locale.js';
import {
  compileTemplate,
  type CompiledTemplate,
  type MailContent,
  TEMPLATE_FILES,
  TEMPLATE_PARTS,
  TemplateError,
  type TemplatePart,
} from './otp-mail.template.js';

/** The built-in templates (English, German, French): `templates/<locale>/<part>.hbs` beside this file. */
export const BUILT_IN_TEMPLATES_DIR = fileURLToPath(new URL('./templates/', import.meta.url));

export interface OtpMailRendererSettings {
  /** MAIL_TEMPLATES_DIR, or null. */
  templatesDir: string | null;
  /** MAIL_DEFAULT_LOCALE (canonical BCP 47). */
  defaultLocale: string;
  appName: string;
  supportAddress: string | null;
}

/** A login code to put into words. */
export interface OtpMailInput {
  code: string;
  validMinutes: number;
  /** The session's locale; an unavailable one (e.g. a custom locale since removed) gets the default. */
  locale: string;
  deviceType: DeviceType;
}

type LocaleTemplates = Record<TemplatePart, CompiledTemplate>;
type LocaleFiles = Partial<Record<TemplatePart, string>>;

/**
 * The login email in every available language, compiled once at start (`load`), rendered per mail
 * (tens of microseconds for all three parts: Handlebars compiles each template to a JavaScript function).
 *
 * The built-in templates come first; each file in MAIL_TEMPLATES_DIR/<locale>/ replaces the built-in
 * file of the same name, and a folder for a locale with no built-in templates adds that locale (it
 * then needs all three files).
 */
export class OtpMailRenderer {
  private constructor(
    private readonly templates: Map<string, LocaleTemplates>,
    /** Where each part of each locale was read from (for previews and error messages). */
    readonly files: Map<string, Record<TemplatePart, string>>,
    readonly defaultLocale: string,
    private readonly appName: string,
    private readonly supportAddress: string | null,
  ) {}

  /**
   * Reads, compiles and checks every template (see `compileTemplate`).
   * @throws ConfigurationError naming the file or variable at fault: a template that does not parse,
   *   uses an unknown variable or lacks the code; a MAIL_TEMPLATES_DIR that is not a folder, holds
   *   a folder that is not a BCP 47 tag, an unknown file name, or a new locale without all three
   *   files; a MAIL_DEFAULT_LOCALE without templates
   */
  static load(settings: OtpMailRendererSettings): OtpMailRenderer {
    const files = readLocaleFolders(BUILT_IN_TEMPLATES_DIR);
    if (settings.templatesDir !== null) {
      for (const [locale, overrides] of readLocaleFolders(resolve(settings.templatesDir), 'MAIL_TEMPLATES_DIR')) {
        files.set(locale, { ...files.get(locale), ...overrides });
      }
    }

    const templates = new Map<string, LocaleTemplates>();
    const sources = new Map<string, Record<TemplatePart, string>>();
    for (const [locale, parts] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
      const missing = TEMPLATE_PARTS.filter((part) => parts[part] === undefined).map((part) => TEMPLATE_FILES[part]);
      if (missing.length > 0) {
        throw invalid(
          `${join(resolve(settings.templatesDir ?? ''), locale)}: missing ${missing.join(', ')} ` +
            `(a locale without built-in templates needs ${Object.values(TEMPLATE_FILES).join(', ')})`,
        );
      }
      const complete = Object.fromEntries(TEMPLATE_PARTS.map((part) => [part, parts[part]!])) as Record<TemplatePart, string>;
      const compiled = {} as LocaleTemplates;
      for (const part of TEMPLATE_PARTS) {
        try {
          compiled[part] = compileTemplate(part, readFileSync(complete[part], 'utf8'), complete[part]);
        } catch (error) {
          throw invalid(error instanceof TemplateError ? error.message : `${complete[part]}: ${String(error)}`);
        }
      }
      templates.set(locale, compiled);
      sources.set(locale, complete);
    }

    if (!templates.has(settings.defaultLocale)) {
      throw new ConfigurationError(
        `Invalid configuration:\n  MAIL_DEFAULT_LOCALE=${JSON.stringify(settings.defaultLocale)}: no templates for this locale ` +
          `(available: ${[...templates.keys()].join(', ')}; add a folder for it to MAIL_TEMPLATES_DIR)`,
      );
    }
    return new OtpMailRenderer(templates, sources, settings.defaultLocale, settings.appName, settings.supportAddress);
  }

  /** The available locales, sorted (canonical BCP 47 tags). */
  get locales(): string[] {
    return [...this.templates.keys()];
  }

  /**
   * The locale of a new login's email from its `Accept-Language` header (RFC 4647 lookup,
   * falling back to MAIL_DEFAULT_LOCALE): see `negotiateLocale`.
   */
  negotiate(acceptLanguage: string | undefined): string {
    return negotiateLocale(acceptLanguage, this.locales, this.defaultLocale);
  }

  /** The subject (one line, whitespace collapsed), plain text and HTML of a login code's email. */
  render(input: OtpMailInput): MailContent {
    const locale = this.templates.has(input.locale) ? input.locale : this.defaultLocale;
    const templates = this.templates.get(locale)!;
    const variables = {
      code: input.code,
      valid_minutes: input.validMinutes,
      app_name: this.appName,
      device_type: input.deviceType,
      locale,
      support_address: this.supportAddress,
    };
    return {
      subject: templates.subject(variables).replace(/\s+/g, ' ').trim(),
      text: templates.text(variables),
      html: templates.html(variables),
    };
  }
}

function invalid(message: string): ConfigurationError {
  return new ConfigurationError(`Invalid mail template:\n  ${message}`);
}

/**
 * `<dir>/<locale>/<part>.hbs` files by locale. Folder names must be canonical BCP 47 tags (`de`,
 * `pt-BR`); dot files are skipped; any other entry is an error, so a misspelt name cannot be
 * silently ignored.
 * @param variable the setting that named `dir`, for errors about the folder itself
 */
function readLocaleFolders(dir: string, variable?: string): Map<string, LocaleFiles> {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    entries = readdirSync(dir);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? (error instanceof Error ? error.message : String(error));
    throw new ConfigurationError(`Invalid configuration:\n  ${variable ?? 'templates'}=${JSON.stringify(dir)}: cannot read this folder (${reason})`);
  }
  const byFile = new Map(TEMPLATE_PARTS.map((part) => [TEMPLATE_FILES[part], part]));
  const locales = new Map<string, LocaleFiles>();
  for (const name of entries.filter((entry) => !entry.startsWith('.'))) {
    const folder = join(dir, name);
    if (!statSync(folder).isDirectory() || canonical(name) !== name) {
      throw invalid(`${folder}: expected a folder named after a locale as a BCP 47 tag (e.g. de, fr, pt-BR)`);
    }
    const parts: LocaleFiles = {};
    for (const file of readdirSync(folder).filter((entry) => !entry.startsWith('.'))) {
      const part = byFile.get(file);
      if (!part) throw invalid(`${join(folder, file)}: unknown file; a locale's templates are ${[...byFile.keys()].join(', ')}`);
      parts[part] = join(folder, file);
    }
    locales.set(name, parts);
  }
  return locales;
}

/** A language subtag of 2–3 letters (ISO 639) and optional script, region or variant subtags. */
const LOCALE_TAG = /^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$/;

function canonical(tag: string): string | null {
  if (!LOCALE_TAG.test(tag)) return null;
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return null;
  }
}
