// Whole-workspace context benchmark: a workspace of about 20,000 real source files (copied from the project's
// own node_modules), then scan time, tokens, the first prefill within a token budget, and the re-prefill after
// a one-line edit in an early and in a late file of the layout. Prints a table, writes
// bench/results/workspace.json.
//   node out/bench/workspace.js [--files 20000] [--budget 32768]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { WorkspaceSession } from '../src/workspace/session';
import { scanWorkspace } from '../src/workspace/scan';
import { tinyQwenModel, TINY_QWEN } from '../test/support/tinyQwen';

const SOURCE = /\.(js|mjs|cjs|ts|md|json)$/;
/** Package build folders the scan would skip as generated: renamed, since here they stand in for source trees. */
const SKIPPED_BY_NAME = new Set(['dist', 'build', 'out', 'lib', 'vendor', 'coverage', 'target']);

function copyCorpus(from: string, to: string, limit: number): number {
  let copied = 0;
  const walk = (dir: string, rel: string, round: number): void => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      if (copied >= limit) return;
      const src = path.join(dir, entry.name);
      // Renamed so the scan does not skip the tree as vendored: here it plays the part of first-party code.
      const name = entry.name === 'node_modules' ? 'deps' : SKIPPED_BY_NAME.has(entry.name) ? `${entry.name}_src` : entry.name;
      const dst = path.join(to, `copy${round}`, rel, name);
      if (entry.isDirectory()) walk(src, path.join(rel, name), round);
      else if (entry.isFile() && SOURCE.test(entry.name) && fs.statSync(src).size < 64 * 1024) {
        fs.mkdirSync(path.dirname(dst), { recursive: true });
        fs.copyFileSync(src, dst);
        copied++;
      }
    }
  };
  for (let round = 0; copied < limit && round < 4; round++) walk(from, '', round);
  return copied;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { files: { type: 'string', default: '20000' }, budget: { type: 'string', default: '32768' }, out: { type: 'string' } } });
  const root = path.resolve(__dirname, '..', '..');
  const outFile = values.out ?? path.join(root, 'bench', 'results', 'workspace.json');
  const ws = fs.mkdtempSync(path.join(os.tmpdir(), 'cskv-ws-bench-'));
  try {
    const files = copyCorpus(path.join(root, 'node_modules'), ws, Number(values.files));
    process.stderr.write(`copied ${files} files into ${ws}\n`);
    const t0 = performance.now();
    const scan = await scanWorkspace(ws);
    const scanMs = performance.now() - t0;
    const model = tinyQwenModel();
    const opened = performance.now();
    const session = await WorkspaceSession.open(ws, { modelDir: model, cskv: path.join(model, 'cskv-16.safetensors'), budgetTokens: Number(values.budget), readWorkspace: true, editDebounceMs: 0 },
      { onStatus: () => undefined, onMemoryChanged: () => undefined });
    const layoutMs = performance.now() - opened; // model load + scan + tokenise what fits the budget + layout
    // The baseline for the open: tokenising every file, as a context that counted all files' tokens up front would.
    const tokeniseStart = performance.now();
    const tokensAll = scan.files.reduce((a, f) => a + session.tokenizer.encode(f.text, { addSpecialTokens: false, literal: true }).length, 0);
    const tokeniseAllMs = performance.now() - tokeniseStart;
    const t1 = performance.now();
    await session.whenResident();
    const prefillMs = performance.now() - t1;
    const layout = session.workspaceContext!.layoutPaths;
    const resident = session.engine.length;
    const edit = async (rel: string): Promise<number> => {
      const abs = path.join(ws, rel);
      const text = fs.readFileSync(abs, 'utf8');
      const t = performance.now();
      session.documentChanged(abs, `${text}\n// one-line edit\n`);
      await session.flushEdits();
      return performance.now() - t;
    };
    const early = layout[1]!;
    const late = layout[layout.length - 1]!;
    const earlyMs = await edit(early);
    const lateMs = await edit(session.workspaceContext!.layoutPaths.at(-2)!); // the previous last file, now second to last
    await session.dispose();
    const result = {
      benchmark: 'workspace-context',
      model: `tiny random Qwen2-shaped (${TINY_QWEN.layers} layers, hidden ${TINY_QWEN.hidden}, Qwen2.5 tokenizer), CSKV density 0.5, 16 bits, onnx CPU`,
      device: `${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`,
      date: new Date().toISOString(),
      files_in_workspace: files,
      files_scanned_in: scan.files.length,
      files_left_out: scan.excluded.length,
      scan_ms: scanMs,
      open_ms: layoutMs,
      tokens_all_files: tokensAll,
      tokenise_all_files_ms: tokeniseAllMs,
      budget_tokens: Number(values.budget),
      resident_tokens: resident,
      resident_files: layout.length - 1,
      prefill_ms: prefillMs,
      prefill_tok_s: resident / (prefillMs / 1000),
      edit_early_file: early,
      reprefill_after_early_edit_ms: earlyMs,
      edit_late_file: late,
      reprefill_after_late_edit_ms: lateMs,
    };
    fs.mkdirSync(path.dirname(outFile), { recursive: true });
    fs.writeFileSync(outFile, `${JSON.stringify(result, null, 2)}\n`);
    console.log('| measure | value |\n|---|---|');
    console.log(`| files (scanned in / left out) | ${files} (${scan.files.length} / ${scan.excluded.length}) |`);
    console.log(`| scan | ${(scanMs / 1000).toFixed(2)} s |`);
    console.log(`| tokens, all files | ${tokensAll} |`);
    console.log(`| tokenising every file (baseline for the open) | ${(tokeniseAllMs / 1000).toFixed(2)} s |`);
    console.log(`| open: model + scan + tokenise what fits + layout | ${(layoutMs / 1000).toFixed(2)} s |`);
    console.log(`| resident within budget ${values.budget} | ${resident} tokens, ${layout.length - 1} files |`);
    console.log(`| first prefill | ${(prefillMs / 1000).toFixed(2)} s (${result.prefill_tok_s.toFixed(0)} tok/s) |`);
    console.log(`| re-prefill after a one-line edit, early file | ${(earlyMs / 1000).toFixed(2)} s |`);
    console.log(`| re-prefill after a one-line edit, late file | ${(lateMs / 1000).toFixed(2)} s |`);
  } finally {
    fs.rmSync(ws, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
