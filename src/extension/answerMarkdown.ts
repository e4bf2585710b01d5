// Answers as HTML: Markdown through marked, code highlighted by highlight.js (whose languages the chat webview
// registers), file references made links. What the model wrote is shown, never obeyed: raw HTML in an answer is
// text, so no hidden span can make a code block's Copy and Insert send more than the block shows, and a file link
// shows the path it opens. The webview sanitises the result with DOMPurify as well. Pure: no DOM, no vscode.
import hljs from 'highlight.js/lib/core';
import { Marked, type Tokens } from 'marked';
import { type FileReference, findProsePath, parseFileReference, prosePathAtStart } from './answerLinks';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);
}

function fileLink(ref: FileReference, inner: string): string {
  return `<a href="#" class="file-link" data-path="${escapeHtml(ref.path)}" data-line="${ref.line ?? ''}" data-column="${ref.column ?? ''}" title="Open ${escapeHtml(ref.path)}">${inner}</a>`;
}

/** How a reference reads: the path, and its line and column when given. */
function referenceText(ref: FileReference): string {
  return `${ref.path}${ref.line ? `:${ref.line}` : ''}${ref.line && ref.column ? `:${ref.column}` : ''}`;
}

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [{
    // Bare paths in prose (src/cache/biBranchCache.ts:42) become links that open the file.
    name: 'filePath',
    level: 'inline',
    start: (src: string) => {
      const i = findProsePath(src);
      return i < 0 ? undefined : i;
    },
    tokenizer: (src: string) => {
      const found = prosePathAtStart(src);
      if (!found) return undefined;
      return { type: 'filePath', raw: src.slice(0, found.length), ref: found.ref };
    },
    renderer: (token) => fileLink((token as unknown as { ref: FileReference }).ref, escapeHtml(token.raw)),
  }],
  renderer: {
    html({ text, block }: Tokens.HTML | Tokens.Tag) {
      return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
    },
    code({ text, lang }: Tokens.Code) {
      const language = (lang ?? '').split(/\s+/)[0] ?? '';
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      // The Copy and Insert buttons are added after sanitising (the webview's addCodeActions), which lets no button through.
      return `<div class="code-block"><div class="code-toolbar"><span class="code-lang">${escapeHtml(language)}</span></div>` +
        `<pre><code class="hljs${known ? ` language-${escapeHtml(language)}` : ''}">${body}</code></pre></div>`;
    },
    codespan({ text }: Tokens.Codespan) {
      const ref = parseFileReference(text);
      return ref ? fileLink(ref, `<code>${escapeHtml(text)}</code>`) : `<code>${escapeHtml(text)}</code>`;
    },
    link({ href, tokens, text }: Tokens.Link) {
      const inner = this.parser.parseInline(tokens);
      const ref = parseFileReference(href);
      if (ref) {
        // The link's own words open the file only when they name it; otherwise the path it opens is shown beside them.
        const shown = parseFileReference(text.replace(/`/g, ''));
        const same = shown && shown.path === ref.path && shown.line === ref.line && shown.column === ref.column;
        return same ? fileLink(ref, inner) : `${inner} (${fileLink(ref, `<code>${escapeHtml(referenceText(ref))}</code>`)})`;
      }
      if (/^(https?:|mailto:)/i.test(href)) return `<a href="${escapeHtml(href)}" title="${escapeHtml(href)}">${inner}</a>`;
      return inner; // command:, javascript:, anything else: text only
    },
    image({ text }: Tokens.Image) {
      return escapeHtml(text); // no remote content, ever
    },
  },
});

/** An answer's Markdown as HTML, before the webview's sanitiser. */
export function answerHtml(markdownText: string): string {
  return marked.parse(markdownText, { async: false });
}
