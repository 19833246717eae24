import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileName, flagsOfInfo, infoOf, parseName, uniqueBase, withoutUid } from '../../src/formats/maildir-name.js';
import { asctime, flagsFromMetadata, metadataHeaders } from '../../src/formats/mbox.js';
import { decodeIds, encodeIds, toRanges } from '../../src/state/ids.js';
import { parseEndpoint, describeEndpoint } from '../../src/endpoints/url.js';
import { chooseFolders, folderFilter, includeHint, selectMailboxes, unmatchedIncludes } from '../../src/pipeline/folders.js';
import { escapeComponent, unescapeComponent } from '../../src/drivers/archive-paths.js';
import { toBatches } from '../../src/pipeline/batches.js';
import { fingerprintKey, headerBlock, toLf, wireSizeOfLf } from '../../src/formats/fingerprint.js';
import type { MailboxInfo, MessageMeta } from '../../src/domain/message.js';

test('maildir info letters are sorted, keywords get letters', () => {
  const kws = ['$Label1', 'project-x'];
  const info = infoOf(new Set(['\\Seen', '\\Flagged', '\\Answered', 'project-x', '\\Draft', '\\Deleted']), (k) =>
    String.fromCharCode(0x61 + kws.indexOf(k)),
  );
  assert.equal(info, 'DFRSTb');
  assert.deepEqual(
    flagsOfInfo(info, (l) => kws[l.charCodeAt(0) - 0x61]),
    new Set(['\\Draft', '\\Flagged', '\\Answered', '\\Seen', '\\Deleted', 'project-x']),
  );
});

test('maildir names carry size, wire size and uid and parse back', () => {
  const base = uniqueBase(new Date(1700000000123));
  assert.match(base, /^1700000000\.M123\d{3}P\d+Q\d+\./);
  const name = fileName(base, 1234, 1270, '42', 'S');
  assert.match(name, /,S=1234,W=1270,U=42:2,S$/, "Dovecot's S= and W= order");
  const p = parseName(name);
  assert.equal(p.size, 1234);
  assert.equal(p.wireSize, 1270);
  assert.equal(parseName(`${base},S=12,W=x1:2,`).wireSize, undefined, 'not a number: not trusted');
  assert.equal(p.uid, '42');
  assert.equal(p.info, 'S');
  assert.equal(parseName(withoutUid(name)).uid, undefined);
  const odd = fileName(base, 10, 11, '0000a1:x,y/z%', 'S');
  assert.equal(odd.split(':').length, 2, 'only the info colon');
  assert.equal(parseName(odd).uid, '0000a1:x,y/z%');
  assert.equal(parseName(withoutUid(odd)).uid, undefined);
  assert.notEqual(uniqueBase(), uniqueBase());
});

test('mbox From_ date is asctime in UTC', () => {
  assert.equal(asctime(new Date(Date.UTC(2023, 0, 5, 7, 8, 9))), 'Thu Jan  5 07:08:09 2023');
  assert.equal(asctime(new Date(Date.UTC(2023, 10, 25, 17, 8, 9))), 'Sat Nov 25 17:08:09 2023');
});

test('mbox metadata headers round-trip flags', () => {
  const flags = new Set(['\\Seen', '\\Answered', '\\Flagged', '\\Draft', '\\Deleted', '$Label1', 'project-x']);
  const h = metadataHeaders(flags);
  assert.equal(h, 'Status: RO\nX-Status: AFTD\nX-Keywords: $Label1 project-x\n');
  const [s, x, k] = h.split('\n').map((l) => l.slice(l.indexOf(':') + 2));
  assert.deepEqual(flagsFromMetadata(s ?? '', x ?? '', k ?? ''), flags);
  assert.equal(metadataHeaders(new Set()), 'Status: O\nX-Status: \nX-Keywords: \n');
});

test('id sets compress to ranges and back', () => {
  assert.equal(toRanges([5, 1, 2, 3, 9, 10, 3]), '1:3,5,9:10');
  const ids = new Set(['1', '2', '3', '7', 'UIDL-abc', '00000001', '0012', '0']);
  assert.deepEqual(decodeIds(encodeIds(ids)), ids, 'UIDLs with leading zeros stay strings');
  assert.deepEqual(decodeIds(encodeIds(new Set(['UIDL-abc']))), new Set(['UIDL-abc']));
});

test('endpoint URLs', () => {
  assert.deepEqual(parseEndpoint('imaps://alice@example.org@imap.example.org'), {
    kind: 'imap', user: 'alice@example.org', host: 'imap.example.org', port: 993, tls: 'tls',
  });
  assert.deepEqual(parseEndpoint('imap://bob%40x.org@127.0.0.1:1143'), { kind: 'imap', user: 'bob@x.org', host: '127.0.0.1', port: 1143, tls: 'starttls' });
  assert.equal(parseEndpoint('pop3s://u@h').kind, 'pop3');
  assert.deepEqual(parseEndpoint('maildir:rel/dir', '/base'), { kind: 'maildir', path: '/base/rel/dir' });
  assert.throws(() => parseEndpoint('imaps://u:secret@h'), (e: Error) => !e.message.includes('secret'));
  assert.throws(() => parseEndpoint('ftp://x'));
  assert.equal(describeEndpoint(parseEndpoint('imap://u@h')), 'imap://u@h:143');
});

const mb = (path: string, noSelect = false): MailboxInfo => ({ path, delimiter: '/', ...(noSelect ? { noSelect } : {}) });

test('folder patterns: * % ? include and exclude, parents kept as containers', () => {
  const all = [mb('INBOX'), mb('Archive'), mb('Archive/2023'), mb('Archive/2023/Q1'), mb('Trash'), mb('Deep', true), mb('Deep/Child')];
  const keep = folderFilter(['Archive/%', 'Deep/*'], []);
  assert.deepEqual(selectMailboxes(all, keep).map((m) => `${m.path}${m.noSelect ? '!' : ''}`), ['Archive!', 'Archive/2023', 'Deep!', 'Deep/Child']);
  const drop = folderFilter([], ['Trash', 'Archive*']);
  assert.deepEqual(selectMailboxes(all, drop).map((m) => m.path), ['INBOX', 'Deep', 'Deep/Child']);
  assert.deepEqual(selectMailboxes(all, folderFilter(['inbox'.toUpperCase()], [])).map((m) => m.path), ['INBOX']);
  assert.deepEqual(unmatchedIncludes(all, ['Trash', 'Nope', 'Deep']), ['Nope'], 'Deep holds no mail: it takes Deep/Child');
});

test('--include of a parent takes its subtree; an unmatched one gets a "did you mean" or the top-level folders', () => {
  const all = [mb('INBOX'), mb('Archiv', true), mb('Archiv/2023'), mb('Archiv/2023/Q1'), mb('Archive-old'), mb('Sent'), mb('Trash')];
  const chosen = (inc: string[], exc: string[] = []): string[] => chooseFolders(all, inc, exc).mailboxes.map((m) => `${m.path}${m.noSelect ? '!' : ''}`);
  assert.deepEqual(chosen(['Archiv']), ['Archiv!', 'Archiv/2023', 'Archiv/2023/Q1'], 'a container takes its subtree');
  assert.deepEqual(chosen(['Archiv/2023']), ['Archiv!', 'Archiv/2023'], 'a folder with mail means that folder only');
  assert.deepEqual(chosen(['Archiv'], ['Archiv/2023/Q1']), ['Archiv!', 'Archiv/2023']);
  assert.deepEqual(chooseFolders(all, ['Archiv', 'Nope'], []).unmatched, ['Nope']);
  const courier = [mb('INBOX'), mb('INBOX/Sent'), mb('INBOX/Drafts')];
  assert.deepEqual(chooseFolders(courier, ['INBOX'], []).mailboxes.map((m) => m.path), ['INBOX'], '--include INBOX is the inbox alone');
  assert.equal(includeHint(all, 'sent'), ' (did you mean "Sent"?)');
  assert.equal(includeHint(all, 'Trahs'), ' (did you mean "Trash"?)');
  assert.equal(includeHint(all, '2023'), ' (did you mean "Archiv/2023"?)');
  assert.equal(includeHint(all, 'Projects'), ' (top-level folders: INBOX, Archiv, Archive-old, Sent, Trash)');
});

test('folder name escaping is reversible (listescape style)', () => {
  for (const name of ['a.b', '~home', '.hidden', 'x/y', 'back\\slash', 'Résumé – Ünïcödé', '日本語']) {
    const esc = escapeComponent(name, '.');
    assert.equal(esc.includes('/'), false);
    assert.equal(esc.includes('.'), false, esc);
    assert.equal(unescapeComponent(esc), name);
  }
  assert.equal(escapeComponent('Résumé', '.'), 'Résumé');
});

test('batches are bounded by bytes and count; a big message travels alone', () => {
  const m = (id: number, size: number): MessageMeta => ({ mailbox: mb('INBOX'), id: String(id), size, flags: new Set() });
  const batches = toBatches([m(1, 10), m(2, 10), m(3, 100), m(4, 5), m(5, 5), m(6, 5)], 30, 2);
  assert.deepEqual(batches.map((b) => b.map((x) => x.id)), [['1', '2'], ['3'], ['4', '5'], ['6']]);
});

test('fingerprints agree between the wire form and the archive form', () => {
  const wire = Buffer.from('Subject: a\r\nMessage-ID: <x@y>\r\n\r\nbody\r\nline\r\n');
  const archived = toLf(wire);
  assert.equal(wireSizeOfLf(archived), wire.length);
  assert.equal(
    fingerprintKey(toLf(headerBlock(wire)), wire.length),
    fingerprintKey(headerBlock(archived), wireSizeOfLf(archived)),
  );
  assert.notEqual(fingerprintKey(headerBlock(archived), 1), fingerprintKey(headerBlock(archived), 2));
});

test('an archive belongs to an account, whatever the scheme or port', async () => {
  const { accountOf } = await import('../../src/state/checkpoint.js');
  assert.equal(accountOf('imaps://a@b.org@Mail.Example.org:993'), accountOf('imap://a@b.org@mail.example.org:143'));
  assert.notEqual(accountOf('imaps://a@x:993'), accountOf('imaps://b@x:993'));
  assert.notEqual(accountOf('imaps://a@x:993'), accountOf('pop3s://a@x:995'));
  assert.equal(accountOf('pop3s://a@x:995'), accountOf('pop3://a@x:110'));
});
