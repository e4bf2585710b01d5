// make_fixtures.py --cross-check: the committed fixtures against transformers, a report written, nothing changed.
// transformers does not install here (no PyPI), so the comparison and the report are exercised with the stand-in
// runner (the numpy reference in transformers' place): unperturbed it must agree, perturbed it must disagree. The
// transformers run itself is a stage of the GPU session (test/gpu/device_check.sh), where transformers is installed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { fixturesDir, repoRoot, tempDir } from '../support/paths';

const script = path.join(repoRoot, 'test', 'tools', 'make_fixtures.py');
const fixtureNames = fs.readdirSync(path.join(fixturesDir, 'models')).filter((n) => fs.statSync(path.join(fixturesDir, 'models', n)).isDirectory());

interface FixtureRecord {
  agrees: boolean;
  failures?: string[];
  logits_max_rel_err?: number;
  greedy_checked: boolean;
  greedy_skip_reason?: string;
  step_logits_max_rel_err?: number;
  runner: string;
}
interface Report {
  verdict: 'agree' | 'disagree' | 'skipped' | 'error' | 'running';
  skip_reason?: string;
  runner?: { runner: string; transformers_version?: string };
  fixtures: Record<string, FixtureRecord>;
}

/** Content hash of every file under test/fixtures: the mode must leave it as it was. */
function fixturesHash(): string {
  const hash = createHash('sha256');
  const walk = (dir: string): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(p);
      else hash.update(p).update(fs.readFileSync(p));
    }
  };
  walk(fixturesDir);
  return hash.digest('hex');
}

function crossCheck(...args: string[]): { status: number | null; stdout: string; stderr: string; report: Report | undefined } {
  const out = tempDir('cskv-crosscheck-');
  const before = fixturesHash();
  const r = spawnSync('python3', [script, '--cross-check', out, ...args], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(fixturesHash(), before, 'nothing under test/fixtures changed');
  const file = path.join(out, 'fixtures-crosscheck.json');
  const report = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as Report) : undefined;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, report };
}

test('with transformers: skipped with the reason where it does not import, else every fixture agrees', () => {
  const r = crossCheck();
  assert.ok(r.report, `a report is written either way (stderr: ${r.stderr})`);
  if (r.status === 3) {
    assert.equal(r.report.verdict, 'skipped');
    assert.match(r.report.skip_reason ?? '', /torch|transformers/);
    assert.deepEqual(r.report.fixtures, {});
    assert.match(r.stdout, /SKIPPED/);
  } else {
    assert.equal(r.status, 0, `transformers agrees with the reference: ${r.stdout}`);
    assert.equal(r.report.verdict, 'agree');
    assert.deepEqual(Object.keys(r.report.fixtures).sort(), [...fixtureNames].sort());
  }
});

test('the stand-in (the reference itself) agrees on every fixture, greedy checked but where transformers cannot be', () => {
  const r = crossCheck('--runner', 'reference');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.ok(r.report);
  assert.equal(r.report.verdict, 'agree');
  assert.deepEqual(Object.keys(r.report.fixtures).sort(), [...fixtureNames].sort());
  for (const [name, rec] of Object.entries(r.report.fixtures)) {
    assert.equal(rec.agrees, true, name);
    // the committed logits carry 7 significant digits
    assert.ok(rec.logits_max_rel_err! < 1e-6, `${name}: ${rec.logits_max_rel_err}`);
    if (name === 'qwen2-dynamic') assert.match(rec.greedy_skip_reason ?? '', /dynamic rope/);
    else assert.ok(rec.greedy_checked && rec.step_logits_max_rel_err! < 1e-6, name);
  }
});

test('a stand-in with perturbed weights disagrees: exit 1, every fixture named with what differs', () => {
  const small = crossCheck('--runner', 'reference', '--perturb', '1e-2');
  assert.equal(small.status, 1, small.stdout + small.stderr);
  assert.ok(small.report);
  assert.equal(small.report.verdict, 'disagree');
  for (const [name, rec] of Object.entries(small.report.fixtures)) {
    assert.equal(rec.agrees, false, name);
    assert.match(rec.failures!.join('; '), /prompt logits rel err/, name);
    assert.ok(rec.logits_max_rel_err! > 1e-4, name);
  }
  assert.match(small.stdout, /were not changed/);
  const large = crossCheck('--runner', 'reference', '--perturb', '0.3');
  assert.equal(large.status, 1);
  const greedy = Object.values(large.report!.fixtures).filter((rec) => rec.failures!.some((f) => f.startsWith('greedy ')));
  assert.ok(greedy.length >= 1, 'a large perturbation changes greedy tokens, and the report says which');
});

test('bad use is refused with a message, before anything runs', () => {
  const inside = spawnSync('python3', [script, '--cross-check', path.join(fixturesDir, 'report')], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(inside.status, 2);
  assert.match(inside.stderr, /may not go under .*test\/fixtures/);
  assert.equal(fs.existsSync(path.join(fixturesDir, 'report')), false);
  const perturbAlone = spawnSync('python3', [script, '--perturb', '0.1'], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(perturbAlone.status, 2);
  assert.match(perturbAlone.stderr, /go with --cross-check/);
});
