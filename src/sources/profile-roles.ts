import type { MailboxInfo } from '../domain/message.js';
import { ROLE_FLAG, type FolderRole } from '../profiles/schema.js';
import type { Source } from './source.js';
import { SourceWrapper } from './wrapper.js';

/**
 * A source account's folder roles from its provider profile (GMX's "Gesendet" is its \Sent): a
 * folder the server lists without a special-use flag, whose path is the profile's name for a
 * role, is handed on with that role (RFC 6154 flag), so that migrate puts it in the target's
 * folder for the role (drivers/imap/folder-map.ts) as it does for a server that announces SPECIAL-USE.
 * A flag the server gives wins.
 */
export class ProfileRolesSource extends SourceWrapper {
  private readonly byPath: Map<string, string>;

  constructor(inner: Source, roles: Partial<Record<FolderRole, string>>) {
    super(inner);
    this.byPath = new Map(Object.entries(roles).map(([role, path]) => [path, ROLE_FLAG[role as FolderRole]]));
  }

  override async mailboxes(): Promise<MailboxInfo[]> {
    return (await this.inner.mailboxes()).map((m) => {
      const flag = m.specialUse === undefined && m.noSelect !== true ? this.byPath.get(m.path) : undefined;
      return flag === undefined ? m : { ...m, specialUse: flag };
    });
  }
}
