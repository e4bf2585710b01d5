// The webview scripts (media/*.js) are JavaScript with // @ts-check and JSDoc types; the main build does not see
// them, so this checks them with their own tsconfig (DOM types, strict).
import assert from 'node:assert/strict';
import * as cp from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../support/paths';

test('media/*.js type-check (tsc -p media)', () => {
  const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
  const r = cp.spawnSync(process.execPath, [tsc, '-p', path.join(repoRoot, 'media')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});
