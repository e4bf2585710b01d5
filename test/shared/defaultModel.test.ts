// The default model is found in models/house of the installed package, from wherever the code runs inside it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { defaultModelDir, packageRoot } from '../../src/shared/defaultModel';
import { tempDir } from '../support/paths';

test('the package root is the nearest named package when it is cskv-code, never one above another package', () => {
  const root = tempDir();
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'cskv-code' }));
  const inner = path.join(root, 'dist', 'nested');
  fs.mkdirSync(inner, { recursive: true });
  // A module-type marker names no package: passed over.
  fs.writeFileSync(path.join(root, 'dist', 'package.json'), JSON.stringify({ type: 'commonjs' }));
  assert.equal(packageRoot(inner), root);
  // Code inside another package (a checkout without our package.json below a folder that has one) has no root here.
  fs.writeFileSync(path.join(root, 'dist', 'package.json'), JSON.stringify({ name: 'something-else' }));
  assert.equal(packageRoot(inner), undefined);
  assert.equal(packageRoot(path.parse(root).root), undefined);
});

test('the default model counts only once its config.json is there', () => {
  const root = tempDir();
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'cskv-code' }));
  const model = path.join(root, 'models', 'house');
  fs.mkdirSync(model, { recursive: true });
  assert.equal(defaultModelDir(root), undefined);
  fs.writeFileSync(path.join(model, 'config.json'), '{}');
  assert.equal(defaultModelDir(path.join(root, 'dist')), model);
});
