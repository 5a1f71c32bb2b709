import { simpleParser } from 'mailparser';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  to: string;
  /**
   * The envelope recipients exactly as the client wrote them in RCPT TO (smtp-server itself shows
   * IDNA domains decoded to Unicode): where the mail is actually delivered.
   */
  rcptTo: string[];
  from: string;
  subject: string;
  text: string;
  html: string;
  /** The 6-digit code found in the plain-text body. */
  code: string | null;
  /** Header fields by lower-case name, as mailparser reads them. */
  headers: Map<string, unknown>;
  /** The message exactly as received (e.g. to verify its DKIM signature). */
  raw: Buffer;
}

/**
 * A real SMTP server (the `smtp-server` package) on a loopback port that keeps what it receives.
 * `refuse` makes it answer 550 to every message, like a server that rejects the mail; `deferOnce`
 * answers 451 (try again later) to the next message for each address in it.
 */
export class SmtpSink {
  readonly messages: ReceivedMail[] = [];
  refuse = false;
  /** Messages answered with a refusal while `refuse` was set. */
  refused = 0;
  /** Envelope recipients whose next message is answered 451 (a transient failure), once each. */
  readonly deferOnce = new Set<string>();
  /** Messages answered 451 through `deferOnce`. */
  deferred = 0;
  /** Milliseconds to wait before answering each message (keeps the sender's request in flight). */
  delayMs = 0;
  /** Messages received but not yet answered. */
  pending = 0;
  private readonly server: SMTPServer;
  private waiters: (() => void)[] = [];
  /** RCPT TO addresses as sent, per connection id, for the transaction in progress. */
  private readonly wireRecipients = new Map<string, string[]>();

  private constructor() {
    this.server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      // smtp-server's logger (bunyan-style) sees each client command as written: the only place
      // where an A-label domain is seen before smtp-server decodes it.
      logger: {
        level: () => undefined,
        trace: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: () => undefined,
        fatal: () => undefined,
        debug: (entry: { tnx?: string; cid?: string; command?: string }, _message?: string, line?: string) => {
          if (entry.tnx !== 'command' || !entry.cid) return;
          if (entry.command === 'MAIL') this.wireRecipients.set(entry.cid, []);
          const address = entry.command === 'RCPT' ? /<([^>]*)>/.exec(String(line))?.[1] : undefined;
          if (address !== undefined) this.wireRecipients.get(entry.cid)?.push(address);
        },
      },
      onData: (stream, session, answer) => {
        this.pending += 1;
        const callback = (error?: Error | null) => {
          const reply = () => {
            this.pending -= 1;
            answer(error);
          };
          if (this.delayMs > 0) setTimeout(reply, this.delayMs);
          else reply();
        };
        if (this.refuse) {
          this.refused += 1;
          stream.resume();
          stream.on('end', () => callback(Object.assign(new Error('Mailbox unavailable'), { responseCode: 550 })));
          return;
        }
        const deferredTo = (this.wireRecipients.get(session.id) ?? []).filter((to) => this.deferOnce.delete(to));
        if (deferredTo.length > 0) {
          this.deferred += 1;
          stream.resume();
          stream.on('end', () => callback(Object.assign(new Error('Try again later'), { responseCode: 451 })));
          return;
        }
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        simpleParser(stream)
          .then((mail) => {
            const text = mail.text ?? '';
            const to = Array.isArray(mail.to) ? mail.to[0]?.text : mail.to?.text;
            this.messages.push({
              to: to ?? '',
              rcptTo: this.wireRecipients.get(session.id) ?? [],
              from: mail.from?.text ?? '',
              subject: mail.subject ?? '',
              text,
              html: typeof mail.html === 'string' ? mail.html : '',
              code: /\b(\d{6})\b/.exec(text)?.[1] ?? null,
              headers: mail.headers as Map<string, unknown>,
              raw: Buffer.concat(chunks),
            });
            this.waiters.forEach((wake) => wake());
            callback();
          })
          .catch(callback);
      },
    });
  }

  /** @param port a fixed port (e.g. to bring a stopped server back where the app expects it) */
  static async start(port = 0): Promise<SmtpSink> {
    const sink = new SmtpSink();
    await new Promise<void>((resolve) => sink.server.listen(port, '127.0.0.1', resolve));
    return sink;
  }

  get url(): string {
    return `smtp://127.0.0.1:${(this.server.server.address() as AddressInfo).port}`;
  }

  /** The code of the latest mail to `to`, waiting up to `timeoutMs` (ms) for it to arrive. @throws when none arrives in time */
  async codeFor(to: string, timeoutMs = 5_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const code = this.messages.filter((m) => m.to === to).at(-1)?.code;
      if (code) return code;
      if (Date.now() > deadline) throw new Error(`No mail with a code for ${to}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
      this.waiters = [];
    }
  }

  countTo(to: string): number {
    return this.messages.filter((m) => m.to === to).length;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
