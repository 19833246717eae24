import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MailferryError } from '../../src/domain/errors.js';
import { mapFolder, parseMapRule, roleByName, targetRoles, type MapContext } from '../../src/drivers/imap/folder-map.js';

const ctx = (over: Partial<MapContext> = {}): MapContext => ({ rules: [], delimiter: '.', roles: new Map(), where: 'imap://t', ...over });

describe('folder mapping', () => {
  test('parseMapRule: OLD=NEW at the first "="; malformed is a usage error', () => {
    assert.deepEqual(parseMapRule('Archive/2023=Old/2023'), { from: 'Archive/2023', to: 'Old/2023' });
    assert.deepEqual(parseMapRule('a=b=c'), { from: 'a', to: 'b=c' });
    assert.deepEqual(parseMapRule('Old/*=Archive/Old/*'), { from: 'Old/*', to: 'Archive/Old/*' });
    for (const bad of ['noequals', '=x', 'x=', 'a//b=c', 'a=/b', 'a/=b', 'Old/*=New', 'Old=New/*', 'O*=N*', '*/x=*', 'a/*/*=b/*']) {
      assert.throws(() => parseMapRule(bad), (e: unknown) => e instanceof MailferryError && e.kind === 'usage', bad);
    }
  });

  test('--map patterns: a subtree moves whole; exact beats pattern, longer beats shorter', () => {
    const rules = [parseMapRule('Old/*=Archive/Old/*'), parseMapRule('Old/2020=Y2020'), parseMapRule('Old/Keep/*=Kept/*'), parseMapRule('Top/*=*')];
    const to = (path: string): string => mapFolder({ path, delimiter: '/' }, ctx({ rules })).path;
    assert.equal(to('Old'), 'Archive.Old');
    assert.equal(to('Old/x/y'), 'Archive.Old.x.y');
    assert.equal(to('Old/2020'), 'Y2020');
    assert.equal(to('Old/Keep/a'), 'Kept.a');
    assert.equal(to('Older'), 'Older');
    assert.equal(to('Top/a/b'), 'a.b');
    assert.equal(to('Top'), 'Top');
    const all = [parseMapRule('*=Imported/*')];
    assert.equal(mapFolder({ path: 'INBOX', delimiter: '/' }, ctx({ rules: all })).path, 'Imported.INBOX');
    assert.equal(mapFolder({ path: 'Sent', delimiter: '/', specialUse: '\\Sent' }, ctx({ rules: all, roles: new Map([['\\Sent', 'Sent']]) })).path, 'Imported.Sent');
  });

  test('roleByName: top level or under INBOX, case-insensitive', () => {
    assert.equal(roleByName('Sent Items', '.'), '\\Sent');
    assert.equal(roleByName('INBOX.Junk E-mail', '.'), '\\Junk');
    assert.equal(roleByName('deleted items', '/'), '\\Trash');
    assert.equal(roleByName('Projects/Sent', '/'), undefined);
    assert.equal(roleByName('Sent/Old', '/'), undefined);
    assert.equal(roleByName('Sent', null), '\\Sent');
  });

  test('targetRoles: SPECIAL-USE wins over names; names ranked; \\Noselect ignored', () => {
    const roles = targetRoles(
      [
        { path: 'Sent' },
        { path: 'Sent Items', specialUse: '\\Sent' },
        { path: 'Deleted Items' },
        { path: 'Trash', noSelect: true },
        { path: 'Junk E-mail' },
        { path: 'Junk' },
        { path: 'All', specialUse: '\\All' },
      ],
      '.',
    );
    assert.equal(roles.get('\\Sent'), 'Sent Items');
    assert.equal(roles.get('\\Trash'), 'Deleted Items');
    assert.equal(roles.get('\\Junk'), 'Junk');
    assert.equal(roles.get('\\Drafts'), undefined);
    assert.equal(roles.size, 3);
  });

  test('targetRoles: the target profile names a role after SPECIAL-USE and before the well-known names, only when listed', () => {
    const listed = [{ path: 'Gesendet' }, { path: 'Sent' }, { path: 'Papierkorb' }, { path: 'Trash', specialUse: '\\Trash' }, { path: 'Entwurf', noSelect: true }];
    const named = new Map([['\\Sent', 'Gesendet'], ['\\Trash', 'Papierkorb'], ['\\Drafts', 'Entwurf'], ['\\Junk', 'Spamverdacht'], ['\\All', 'Gesendet']]);
    const roles = targetRoles(listed, '.', named);
    assert.equal(roles.get('\\Sent'), 'Gesendet', 'the profile name wins over the well-known "Sent"');
    assert.equal(roles.get('\\Trash'), 'Trash', 'a SPECIAL-USE flag wins over the profile');
    assert.equal(roles.get('\\Drafts'), undefined, 'a \\Noselect folder the profile names is not used');
    assert.equal(roles.get('\\Junk'), undefined, 'a folder the target does not list is not used');
    assert.equal(roles.size, 2, '\\All is never mapped');
    // Without the profile the well-known name decides.
    assert.equal(targetRoles(listed, '.').get('\\Sent'), 'Sent');
  });

  test('mapFolder: --map first, then the role, then the name with the target delimiter', () => {
    const roles = new Map([['\\Sent', 'Sent Items'] as const]);
    const rules = [{ from: 'Archive/2023', to: 'Old/2023' }, { from: 'Sent', to: 'Outbox/Kept' }];
    assert.deepEqual(mapFolder({ path: 'Archive/2023', delimiter: '/' }, ctx({ rules })), { path: 'Old.2023', reason: 'map', rule: rules[0] });
    assert.equal(mapFolder({ path: 'Sent', delimiter: '/', specialUse: '\\Sent' }, ctx({ rules, roles })).path, 'Outbox.Kept');
    assert.deepEqual(mapFolder({ path: 'Sent', delimiter: '/', specialUse: '\\Sent' }, ctx({ roles })), { path: 'Sent Items', reason: 'role', role: '\\Sent' });
    assert.deepEqual(mapFolder({ path: 'Drafts', delimiter: '/', specialUse: '\\drafts' }, ctx({ roles })), { path: 'Drafts', reason: 'name', role: '\\Drafts' });
    assert.deepEqual(mapFolder({ path: 'All Mail', delimiter: '/', specialUse: '\\All' }, ctx({ roles })), { path: 'All Mail', reason: 'name' });
    assert.equal(mapFolder({ path: 'Projects/Client A/Reports', delimiter: '/' }, ctx()).path, 'Projects.Client A.Reports');
    assert.equal(mapFolder({ path: 'a.b.c', delimiter: '.' }, ctx({ delimiter: '/' })).path, 'a/b/c');
    // a source written with "." is matched by the user's "/"
    assert.equal(mapFolder({ path: 'Archive.2023', delimiter: '.' }, ctx({ rules, delimiter: '/' })).path, 'Old/2023');
  });

  test('mapFolder: a component holding the target delimiter is a mailbox error (also in NEW)', () => {
    const isMailbox = (e: unknown): boolean => e instanceof MailferryError && e.kind === 'mailbox';
    assert.throws(() => mapFolder({ path: 'Release v1.2', delimiter: '/' }, ctx()), isMailbox);
    assert.throws(() => mapFolder({ path: 'x', delimiter: '/' }, ctx({ rules: [{ from: 'x', to: 'a.b' }] })), isMailbox);
    assert.throws(() => mapFolder({ path: 'a/b', delimiter: '/' }, ctx({ delimiter: null })), isMailbox);
    assert.equal(mapFolder({ path: 'a', delimiter: '/' }, ctx({ delimiter: null })).path, 'a');
  });
});
