import type { Credential, Credentials } from '../../auth/credentials.js';
import { MailferryError } from '../../domain/errors.js';
import type { SmtpSender } from './transport.js';

/**
 * A relay login that outlives its OAuth2 token. nodemailer logs in once per connection with the
 * credential it was built with; when the relay refuses a login (the pool reconnected after the
 * token expired, or it was revoked), the credential is invalidated, a sender is built with a fresh
 * one, and the message is sent once more. A second refusal is final (exit 4), as is any refusal of
 * a password (not renewable).
 */
export function renewingSender(creds: Credentials, first: Credential, make: (c: Credential) => SmtpSender): SmtpSender {
  let credential = first;
  let sender = make(credential);
  return {
    async send(envelope, raw) {
      try {
        return await sender.send(envelope, raw);
      } catch (e: unknown) {
        if (!(e instanceof MailferryError && e.kind === 'auth' && creds.renewable)) throw e;
        creds.invalidate(credential);
        credential = await creds.get();
        sender.close();
        sender = make(credential);
        return sender.send(envelope, raw);
      }
    },
    close() {
      sender.close();
    },
  };
}
