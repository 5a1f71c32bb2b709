/** A rendered email: subject, plain-text and HTML bodies. */
export interface MailContent {
  subject: string;
  text: string;
  html: string;
}

/**
 * The login-code email. Plain text and HTML say the same thing: the code, prominent, and how many
 * minutes it is valid. No links or images, so nothing can track the reader or be phished through it.
 * @param locale BCP 47 language tag (RFC 5646) the session asked for; only English exists so far,
 *   so it is accepted and ignored (issue #15 adds the translations)
 */
export function renderOtpMail(code: string, validMinutes: number, _locale: string): MailContent {
  const minutes = `${validMinutes} minute${validMinutes === 1 ? '' : 's'}`;
  return {
    subject: `Your login code: ${code}`,
    text: [
      `Your login code is ${code}`,
      '',
      `It is valid for ${minutes}. If you did not try to log in, ignore this email.`,
    ].join('\n'),
    html: [
      '<!doctype html><html><body style="font-family:sans-serif">',
      '<p>Your login code is</p>',
      `<p style="font-size:32px;font-weight:bold;letter-spacing:4px">${code}</p>`,
      `<p>It is valid for ${minutes}. If you did not try to log in, ignore this email.</p>`,
      '</body></html>',
    ].join(''),
  };
}
