// Scan cost against depth: a chain of N nested folders (one file in each) against N sibling folders (one file in
// each), the same number of folders and files, scanned in the same run. A walk linear in the tree keeps the ratio
// chain/flat near constant as N grows; the walk before issue 16 resolved every path from the root again (57 s at
// N = 1000 against 1.2 s after, measured with that code side by side). Prints a table, writes
// bench/results/scan-depth.json.
//   node out/bench/scanDepth.js [--sizes 250,500,1000] [--out FILE]
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { scanWorkspace } from '../src/workspace/scan';

function tree(shape: 'chain' | 'flat', folders: number): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `cskv-scan-${shape}-`));
  let dir = root;
  for (let i = 0; i < folders; i++) {
    dir = shape === 'chain' ? path.join(dir, 'd') : path.join(root, `d${i}`);
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'f.ts'), `export const x = ${i};\n`);
  }
  fs.writeFileSync(path.join(root, '.gitignore'), '*.log\n');
  return root;
}

async function timeScan(root: string, folders: number): Promise<number> {
  const started = performance.now();
  const { files } = await scanWorkspace(root);
  if (files.length !== folders + 1) throw new Error(`scanned ${files.length} files, expected ${folders + 1}`);
  return performance.now() - started;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string', default: '250,500,1000' }, out: { type: 'string' } } });
  const outFile = values.out ?? path.join(__dirname, '..', '..', 'bench', 'results', 'scan-depth.json');
  const rows: Array<{ folders: number; chainMs: number; flatMs: number; ratio: number }> = [];
  for (const folders of values.sizes!.split(',').map(Number)) {
    const chain = tree('chain', folders);
    const flat = tree('flat', folders);
    try {
      // Interleaved, best of three each: the machine is shared.
      const chainMs: number[] = [], flatMs: number[] = [];
      for (let i = 0; i < 3; i++) {
        chainMs.push(await timeScan(chain, folders));
        flatMs.push(await timeScan(flat, folders));
      }
      const row = { folders, chainMs: Math.min(...chainMs), flatMs: Math.min(...flatMs), ratio: 0 };
      row.ratio = row.chainMs / row.flatMs;
      rows.push(row);
    } finally {
      fs.rmSync(chain, { recursive: true, force: true });
      fs.rmSync(flat, { recursive: true, force: true });
    }
  }
  process.stdout.write('folders | chain (nested) ms | flat ms | chain/flat\n');
  for (const r of rows) process.stdout.write(`${r.folders} | ${r.chainMs.toFixed(0)} | ${r.flatMs.toFixed(0)} | ${r.ratio.toFixed(2)}\n`);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, `${JSON.stringify({ date: new Date().toISOString(), rows }, null, 2)}\n`);
}

void main();
