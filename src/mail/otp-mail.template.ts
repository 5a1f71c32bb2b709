import Handlebars from 'handlebars';
import type { DeviceType } from '../sessions/entities/device.entity.js';

/** A rendered email: subject, plain-text and HTML bodies. */
export interface MailContent {
  subject: string;
  text: string;
  html: string;
}

/** The three parts of the login email, one template file each. */
export const TEMPLATE_PARTS = ['subject', 'text', 'html'] as const;
export type TemplatePart = (typeof TEMPLATE_PARTS)[number];

/** The file of each part inside a locale's folder (`<folder>/<locale>/<file>`). */
export const TEMPLATE_FILES: Record<TemplatePart, string> = {
  subject: 'subject.hbs',
  text: 'text.hbs',
  html: 'html.hbs',
};

/** What a template can show. Names as written in templates: `{{app_name}}`. */
export interface OtpMailVariables {
  /** The 6-digit code. */
  code: string;
  /** The code's validity in whole minutes. */
  valid_minutes: number;
  /** APP_NAME. */
  app_name: string;
  /** The device the login was started on: `mobi` (a mobile app install) or `othr`. */
  device_type: DeviceType;
  /** The email's BCP 47 language tag (`en`, `de`, `pt-BR`). */
  locale: string;
  /** MAIL_SUPPORT_ADDRESS, or null when it is not set (test it with `{{#if support_address}}`). */
  support_address: string | null;
}

export const TEMPLATE_VARIABLES: readonly (keyof OtpMailVariables)[] = [
  'code',
  'valid_minutes',
  'app_name',
  'device_type',
  'locale',
  'support_address',
];

/** A compiled template part. */
export type CompiledTemplate = (variables: OtpMailVariables) => string;

/** A template that cannot be used; the message starts with the file's path. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

/**
 * One Handlebars environment for every template: Handlebars' built-in block helpers (`if`,
 * `unless`, `each`, `with`) plus `eq` for comparisons such as `{{#if (eq valid_minutes 1)}}`.
 */
const handlebars = Handlebars.create();
handlebars.registerHelper('eq', (a: unknown, b: unknown) => a === b);
const HELPERS = new Set(['if', 'unless', 'each', 'with', 'lookup', 'eq']);

/** Values used to check every template at start (and for previews). */
export const SAMPLE_VARIABLES: OtpMailVariables = {
  code: '123456',
  valid_minutes: 5,
  app_name: 'Session Management',
  device_type: 'othr',
  locale: 'en',
  support_address: 'support@example.com',
};

/**
 * Compiles one template part and checks it, so that a bad template stops the start instead of
 * failing a login's mail later:
 * - the syntax parses;
 * - every variable it names is one of TEMPLATE_VARIABLES, in every branch, and only known helpers
 *   are called (Handlebars `knownHelpersOnly`, no partials);
 * - the text and HTML parts show `{{code}}` (a login email without its code is useless);
 * - in the HTML part every value goes through Handlebars' HTML escaping: `{{{raw}}}` is refused;
 * - it renders in strict mode (an unknown name throws instead of printing nothing) with sample
 *   values, with and without a support address, for 1 and for several minutes, for both devices.
 * The subject and text parts are not HTML-escaped (they are not HTML).
 * @param file the template's path, named in every error
 * @throws TemplateError `<file>: <what is wrong>`
 */
export function compileTemplate(part: TemplatePart, source: string, file: string): CompiledTemplate {
  let ast: hbs.AST.Program;
  try {
    ast = handlebars.parse(source);
  } catch (error) {
    throw new TemplateError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const scan = new TemplateScanner(part === 'html');
  scan.accept(ast);
  if (scan.problems.length > 0) throw new TemplateError(`${file}: ${scan.problems.join('; ')}`);
  if (part !== 'subject' && !scan.names.has('code')) {
    throw new TemplateError(`${file}: does not show the code; add {{code}}`);
  }

  const template: CompiledTemplate = handlebars.compile<OtpMailVariables>(ast, {
    strict: true,
    knownHelpersOnly: true,
    knownHelpers: { eq: true },
    noEscape: part !== 'html',
  });
  // Handlebars compiles on the first call: do it now, once, with every branch of the built-ins.
  for (const variables of sampleVariations()) {
    try {
      template(variables);
    } catch (error) {
      throw new TemplateError(`${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  return template;
}

/** The sample values in the combinations the built-in templates branch on. */
function sampleVariations(): OtpMailVariables[] {
  return [
    SAMPLE_VARIABLES,
    { ...SAMPLE_VARIABLES, valid_minutes: 1, device_type: 'mobi', support_address: null },
  ];
}

/**
 * Walks a template's syntax tree (Handlebars' documented `Visitor`) and lists the variables it
 * names, with a problem for each unknown variable, partial or unescaped HTML output.
 */
class TemplateScanner extends Handlebars.Visitor {
  readonly names = new Set<string>();
  readonly problems: string[] = [];

  constructor(private readonly html: boolean) {
    super();
  }

  override PathExpression(path: hbs.AST.PathExpression): void {
    const parts = path.data ? (path.parts[0] === 'root' ? path.parts.slice(1) : []) : path.parts;
    const head = parts[0];
    if (head === undefined || HELPERS.has(head)) return;
    if ((TEMPLATE_VARIABLES as readonly string[]).includes(head)) this.names.add(head);
    else this.problems.push(`line ${path.loc.start.line}: unknown variable "${path.original}" (available: ${TEMPLATE_VARIABLES.join(', ')})`);
  }

  override MustacheStatement(mustache: hbs.AST.MustacheStatement): void {
    if (this.html && !mustache.escaped) {
      this.problems.push(`line ${mustache.loc.start.line}: {{{…}}} writes a value without HTML escaping; use {{…}}`);
    }
    super.MustacheStatement(mustache);
  }

  override PartialStatement(partial: hbs.AST.PartialStatement): void {
    this.problems.push(`line ${partial.loc.start.line}: partials ({{> …}}) are not supported`);
  }

  override PartialBlockStatement(partial: hbs.AST.PartialBlockStatement): void {
    this.problems.push(`line ${partial.loc.start.line}: partials ({{#> …}}) are not supported`);
  }
}
