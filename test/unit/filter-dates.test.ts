import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFilter } from '../../src/config/filter.js';

const iso = (d: Date | undefined): string | undefined => d?.toISOString().slice(0, 10);

test('--since/--before ages: days, weeks, months, years back from today, at midnight UTC', () => {
  const now = new Date('2026-03-31T22:15:00Z');
  const at = (text: string): string | undefined => {
    const problems: string[] = [];
    const f = parseFilter(problems, { since: text }, now);
    assert.deepEqual(problems, []);
    assert.equal(f.since?.getUTCHours(), 0, 'midnight UTC');
    return iso(f.since);
  };
  assert.equal(at('0d'), '2026-03-31');
  assert.equal(at('7d'), '2026-03-24');
  assert.equal(at('2w'), '2026-03-17');
  assert.equal(at('1m'), '2026-02-28', 'the 31st a month back: the end of February');
  assert.equal(at('3m'), '2025-12-31');
  assert.equal(at('13m'), '2025-02-28');
  assert.equal(at('1y'), '2025-03-31');
  assert.equal(iso(parseFilter([], { since: '4y' }, new Date('2028-02-29T12:00:00Z')).since), '2024-02-29');
  assert.equal(iso(parseFilter([], { since: '1y' }, new Date('2028-02-29T12:00:00Z')).since), '2027-02-28');
  // Beside the absolute forms, and checked the same way.
  const problems: string[] = [];
  const f = parseFilter(problems, { since: '1y', before: '2026-01-01' }, now);
  assert.deepEqual(problems, []);
  assert.equal(iso(f.before), '2026-01-01');
  for (const bad of ['7', '7x', '-7d', 'd', '1.5m']) {
    const p: string[] = [];
    parseFilter(p, { since: bad }, now);
    assert.match(p[0] ?? '', /--since needs a date: .* or an age such as 7d, 2w, 3m, 1y/, bad);
  }
  const order: string[] = [];
  parseFilter(order, { since: '7d', before: '2w' }, now);
  assert.match(order[0] ?? '', /is not before --before/);
});
