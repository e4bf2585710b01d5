// Locations shared by tests: they run from out/test/..., the fixtures stay in the source tree.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const fixturesDir = path.join(repoRoot, 'test', 'fixtures');
export const modelFixture = (name: string): string => path.join(fixturesDir, 'models', name);

const temporary: string[] = [];
process.on('exit', () => {
  for (const dir of temporary) fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh temporary directory, removed when the process exits. */
export function tempDir(prefix = 'cskv-test-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  temporary.push(dir);
  return dir;
}

/** Copies a model fixture into a temporary directory so a test can damage it. */
export function copyModel(name: string): string {
  const dir = tempDir();
  fs.cpSync(modelFixture(name), dir, { recursive: true });
  return dir;
}
