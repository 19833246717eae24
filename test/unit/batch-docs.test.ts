import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { checkRows } from '../../src/batch/check.js';
import { csvRows } from '../../src/batch/file.js';
import { buildCli } from '../../src/cli.js';
import { BACKUP } from '../../src/commands/backup.js';
import { FORWARD } from '../../src/commands/forward.js';
import { MIGRATE } from '../../src/commands/migrate.js';
import { RESTORE } from '../../src/commands/restore.js';
import { REPO_ROOT } from '../helpers/cli.js';

/**
 * The deployment files of docs/batch/ and the command lines of docs/batch.md, checked against what
 * they rely on: the Kubernetes Job's structure (parsed with the yaml package), its batch file (the
 * ConfigMap's CSV, checked as `mailferry batch` checks one), and every `mailferry batch` line, in
 * the Job, the systemd unit and the docs, parsed by the CLI itself (strict: an unknown flag fails).
 */
const docs = join(REPO_ROOT, 'docs');

type Obj = Record<string, unknown>;
const obj = (v: unknown, what: string): Obj => {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `${what} is an object`);
  return v as Obj;
};
const list = (v: unknown, what: string): unknown[] => {
  assert.ok(Array.isArray(v), `${what} is a list`);
  return v;
};

/** A `mailferry batch ...` line as the CLI reads it: its parsed flags, or the parser's complaint. */
function parseBatch(argv: string[]): Obj {
  let args: Obj | undefined;
  let failed: string | undefined;
  buildCli(argv, (p) => (args = p.args))
    .exitProcess(false)
    .fail((msg, err) => {
      failed ??= msg || String(err);
    })
    .parseSync();
  assert.equal(failed, undefined, `${argv.join(' ')}: ${failed ?? ''}`);
  assert.ok(args !== undefined);
  return args;
}

test('the Kubernetes Indexed Job: completions = parallelism = --shards, its index from JOB_COMPLETION_INDEX, the batch file from the ConfigMap, state and reports on the volume', () => {
  const parsed = parseAllDocuments(readFileSync(join(docs, 'batch', 'job.yaml'), 'utf8'));
  const all = (Array.isArray(parsed) ? parsed : [parsed]).map((d) => {
    assert.deepEqual(d.errors, []);
    return obj(d.toJS(), 'document');
  });
  const byKind = new Map(all.map((d) => [d['kind'], d]));
  const job = obj(byKind.get('Job'), 'the Job');
  assert.equal(job['apiVersion'], 'batch/v1');
  const spec = obj(job['spec'], 'Job.spec');
  assert.equal(spec['completionMode'], 'Indexed');
  assert.equal(spec['completions'], spec['parallelism']);
  const pod = obj(obj(spec['template'], 'template')['spec'], 'pod spec');
  assert.equal(pod['restartPolicy'], 'Never', 'podFailurePolicy needs restartPolicy Never');
  const containers = list(pod['containers'], 'containers').map((c) => obj(c, 'container'));
  assert.equal(containers.length, 1);
  const c = containers[0] as Obj;
  const rule = obj(list(obj(spec['podFailurePolicy'], 'podFailurePolicy')['rules'], 'rules')[0], 'rule');
  assert.equal(rule['action'], 'FailIndex');
  assert.ok(typeof spec['backoffLimitPerIndex'] === 'number', 'FailIndex needs backoffLimitPerIndex');
  const codes = obj(rule['onExitCodes'], 'onExitCodes');
  assert.equal(codes['containerName'], c['name']);
  assert.deepEqual(codes['values'], [2, 4]);

  const argv = list(c['args'], 'args').map(String);
  const args = parseBatch(argv);
  assert.equal(args['shards'], spec['completions'], '--shards is the number of completions');
  assert.equal(args['shard'], undefined, 'the index comes from JOB_COMPLETION_INDEX');
  const mounts = list(c['volumeMounts'], 'volumeMounts').map((m) => obj(m, 'mount'));
  const volumes = list(pod['volumes'], 'volumes').map((v) => obj(v, 'volume'));
  const mountOf = (path: string): { mount: Obj; volume: Obj } => {
    const mount = mounts.find((m) => path.startsWith(`${String(m['mountPath'])}/`));
    assert.ok(mount !== undefined, `${path} is on a mounted volume`);
    const volume = volumes.find((v) => v['name'] === mount['name']);
    assert.ok(volume !== undefined, `volume ${String(mount['name'])} exists`);
    return { mount, volume };
  };
  // The batch file: a key of the ConfigMap mounted where args says.
  const file = String(args['file']);
  const { volume: cmVolume } = mountOf(file);
  const cmName = obj(cmVolume['configMap'], 'configMap volume')['name'];
  const cm = obj(byKind.get('ConfigMap'), 'the ConfigMap');
  assert.equal(obj(cm['metadata'], 'metadata')['name'], cmName);
  const csv = obj(cm['data'], 'ConfigMap.data')[file.split('/').pop() ?? ''];
  assert.equal(typeof csv, 'string', `the ConfigMap holds ${file}`);
  const { rows, problems } = csvRows(String(csv));
  // The Secret's variables, as the pod has them (their names from the rows, their values made up).
  const secretEnv = Object.fromEntries(rows.flatMap((r) => Object.entries(r.data).filter(([k]) => k.endsWith('password-env')).map(([, v]) => [String(v), 'set'])));
  const checked = checkRows(rows, { backup: BACKUP, migrate: MIGRATE, restore: RESTORE, forward: FORWARD }, { problems, env: secretEnv });
  assert.deepEqual(problems, []);
  assert.equal(checked.length, rows.length);
  // Reports, state and the archives the rows write: on the persistent volume.
  const env = list(c['env'], 'env').map((e) => obj(e, 'env var'));
  const state = String(env.find((e) => e['name'] === 'XDG_STATE_HOME')?.['value']);
  for (const path of [String(args['report']), state, ...rows.flatMap((r) => (typeof r.data['to'] === 'string' && r.data['to'].startsWith('maildir:') ? [r.data['to'].slice(8)] : []))]) {
    const { volume } = mountOf(path.endsWith('/') ? path : `${path}/`);
    const claim = obj(volume['persistentVolumeClaim'], `${path}'s volume claim`)['claimName'];
    const pvc = obj(byKind.get('PersistentVolumeClaim'), 'the PVC');
    assert.equal(obj(pvc['metadata'], 'metadata')['name'], claim);
    assert.deepEqual(obj(pvc['spec'], 'PVC spec')['accessModes'], ['ReadWriteMany'], 'the pods share it');
  }
  // The passwords: the variables the rows name, from a Secret.
  const secretRef = obj(obj(list(c['envFrom'], 'envFrom')[0], 'envFrom[0]')['secretRef'], 'secretRef');
  assert.equal(typeof secretRef['name'], 'string');
  assert.ok(!byKind.has('Secret'), 'no Secret (with values) in the manifest');
});

test('every mailferry batch line of the docs, the systemd unit and the image is one the CLI accepts', () => {
  const md = readFileSync(join(docs, 'batch.md'), 'utf8') + readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const lines = [...md.matchAll(/mailferry batch [^`'\n]+/g)].map((m) => m[0]);
  const unit = readFileSync(join(docs, 'batch', 'mailferry-batch@.service'), 'utf8');
  const exec = /^ExecStart=\S+ (batch .*)$/m.exec(unit)?.[1];
  assert.ok(exec !== undefined);
  const shards = /^Environment=SHARDS=(\d+)$/m.exec(unit)?.[1];
  assert.ok(shards !== undefined);
  lines.push(`mailferry ${exec.replace('%i', '1').replace('${SHARDS}', shards)}`);
  assert.ok(lines.length >= 8, lines.join('\n'));
  for (const line of lines) {
    const argv = line.replace(/\{\}|\$\{SLURM_ARRAY_TASK_ID\}/g, '1').replace(/ (:::|#).*$/, '').trim().split(/\s+/).slice(1);
    const args = parseBatch(argv);
    assert.equal(typeof args['file'], 'string', line);
  }
  const dockerfile = readFileSync(join(docs, 'batch', 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /RUN npm ci/);
  assert.match(dockerfile, /^ENTRYPOINT \["node", "\/app\/bin\/mailferry\.js"\]$/m);
  assert.match(dockerfile, /^USER node$/m);
});
