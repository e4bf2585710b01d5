// package.json's contributions against the code: every command that a menu, a walkthrough step or a webview button
// names is contributed and registered in main.ts, and every walkthrough page exists.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { repoRoot } from '../support/paths';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8'));
const contributed = new Set<string>(pkg.contributes.commands.map((c: { command: string }) => c.command));
const registered = new Set([...fs.readFileSync(path.join(repoRoot, 'src', 'extension', 'main.ts'), 'utf8').matchAll(/register\('([\w.]+)'/g)].map((m) => m[1]!));

test('every contributed command is registered, and every command a menu names is contributed', () => {
  for (const command of contributed) assert.ok(registered.has(command), `${command} is contributed but not registered in main.ts`);
  for (const items of Object.values(pkg.contributes.menus) as Array<Array<{ command: string }>>) {
    for (const item of items) assert.ok(contributed.has(item.command), `a menu names ${item.command}, which is not contributed`);
  }
});

test('walkthrough steps: their command links and completion commands exist, their pages are there', () => {
  const steps = pkg.contributes.walkthroughs.flatMap((w: { steps: unknown[] }) => w.steps) as Array<{ description: string; media: { markdown: string }; completionEvents: string[] }>;
  assert.ok(steps.length > 0);
  for (const step of steps) {
    for (const [, command] of step.description.matchAll(/\(command:([\w.]+)\)/g)) assert.ok(contributed.has(command!), `a walkthrough links ${command}`);
    for (const event of step.completionEvents.filter((e) => e.startsWith('onCommand:'))) assert.ok(contributed.has(event.slice('onCommand:'.length)), event);
    assert.ok(fs.existsSync(path.join(repoRoot, step.media.markdown)), `${step.media.markdown} is missing`);
  }
});

test('the webviews\' buttons run contributed commands', () => {
  for (const script of ['chat.js', 'memory.js']) {
    const text = fs.readFileSync(path.join(repoRoot, 'media', script), 'utf8');
    for (const [, command] of text.matchAll(/'(cskv\.[\w]+)'/g)) assert.ok(contributed.has(command!), `${script} runs ${command}`);
  }
});
