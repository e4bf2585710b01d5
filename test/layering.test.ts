// The layering of src/, checked on every `npm test`: an import across a boundary fails here, naming the file and the
// import. Layers, from the top: cli -> calibration, sidecar -> workspace -> runtime -> shared -> protocol; the
// extension sees only protocol and shared (it runs in the editor's process and bundles nothing of the runtime).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as ts from 'typescript';
import { repoRoot } from './support/paths';

/** Each layer (a folder or a single file of src/, without .ts) and the layers its files may import. */
const ALLOWED: Record<string, readonly string[]> = {
  protocol: [],
  shared: ['protocol'],
  runtime: ['shared', 'protocol'],
  workspace: ['runtime', 'protocol', 'shared'],
  calibration: ['workspace', 'runtime', 'protocol', 'shared'],
  sidecar: ['workspace', 'runtime', 'protocol', 'shared'],
  cli: ['calibration', 'sidecar', 'workspace', 'runtime', 'protocol', 'shared'],
  extension: ['protocol', 'shared'],
};

/** Packages that load models or native code; the extension host must never pull them in. */
const RUNTIME_PACKAGES = ['onnxruntime-node', '@huggingface/tokenizers', '@huggingface/jinja', 'vscode-languageserver'];

/** The layer of a path relative to src/ ('runtime/engine.ts' -> 'runtime', 'protocol.ts' -> 'protocol'). */
function layerOf(relative: string): string {
  const first = relative.split('/')[0]!;
  return first.replace(/\.ts$/, '');
}

/** Every import of `file` that crosses a boundary, as "file: 'spec' (layer a may not import layer b)". */
export function violations(srcDir: string, file: string, text: string): string[] {
  const relative = path.relative(srcDir, file).split(path.sep).join('/');
  const from = layerOf(relative);
  const allowed = ALLOWED[from];
  if (!allowed) return [`${relative}: not in any layer (add its folder to the layering rule in test/layering.test.ts)`];
  const found: string[] = [];
  for (const spec of ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName)) {
    if (spec.startsWith('.')) {
      const target = path.relative(srcDir, path.resolve(path.dirname(file), spec)).split(path.sep).join('/');
      if (target.startsWith('..')) {
        found.push(`${relative}: '${spec}' reaches outside src/`);
        continue;
      }
      const to = layerOf(target);
      if (to !== from && !allowed.includes(to)) found.push(`${relative}: '${spec}' (${from} may not import ${to})`);
    } else if (from === 'extension' && RUNTIME_PACKAGES.some((p) => spec === p || spec.startsWith(`${p}/`))) {
      found.push(`${relative}: '${spec}' (the extension may not load runtime packages)`);
    } else if (from !== 'extension' && (spec === 'vscode' || spec.startsWith('vscode-languageclient'))) {
      found.push(`${relative}: '${spec}' (only the extension runs inside VS Code)`);
    }
  }
  return found;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') ? [full] : [];
  });
}

test('every import in src/ stays inside the layering', () => {
  const srcDir = path.join(repoRoot, 'src');
  const files = sourceFiles(srcDir);
  assert.ok(files.length > 50, `expected the project's sources under ${srcDir}`);
  const found = files.flatMap((f) => violations(srcDir, f, fs.readFileSync(f, 'utf8')));
  assert.deepEqual(found, []);
});

test('the layering rule catches an import across a boundary', () => {
  const srcDir = path.join(repoRoot, 'src');
  const at = (rel: string): string => path.join(srcDir, rel);
  assert.deepEqual(violations(srcDir, at('extension/config.ts'), "import { x } from '../runtime/model/defaultModel';"),
    ["extension/config.ts: '../runtime/model/defaultModel' (extension may not import runtime)"]);
  assert.deepEqual(violations(srcDir, at('runtime/engine.ts'), "import type { S } from '../workspace/session';"),
    ["runtime/engine.ts: '../workspace/session' (runtime may not import workspace)"]);
  assert.deepEqual(violations(srcDir, at('sidecar/server.ts'), "import { c } from '../calibration/calibrate';"),
    ["sidecar/server.ts: '../calibration/calibrate' (sidecar may not import calibration)"]);
  assert.deepEqual(violations(srcDir, at('protocol.ts'), "export type { MemoryReport } from './runtime/engine';"),
    ["protocol.ts: './runtime/engine' (protocol may not import runtime)"]);
  assert.deepEqual(violations(srcDir, at('extension/ctx.ts'), "const ort = require('onnxruntime-node');"),
    ["extension/ctx.ts: 'onnxruntime-node' (the extension may not load runtime packages)"]);
  assert.deepEqual(violations(srcDir, at('workspace/scan.ts'), "import * as vscode from 'vscode';"),
    ["workspace/scan.ts: 'vscode' (only the extension runs inside VS Code)"]);
  assert.deepEqual(violations(srcDir, at('cli/cli.ts'), "import { serve } from '../sidecar/server';\nimport { calibrate } from '../calibration/calibrate';"), []);
});
