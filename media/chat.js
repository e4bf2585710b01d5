// @ts-check
// The chat webview: renders the conversation, streams answers in as Markdown (marked, sanitised by DOMPurify,
// code highlighted by highlight.js), and mirrors the extension's message switch (src/extension/chatView.ts).
// Bundled by esbuild into dist/webview/chat.js; nothing is loaded from outside the extension.
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import kotlin from 'highlight.js/lib/languages/kotlin';
import markdown from 'highlight.js/lib/languages/markdown';
import php from 'highlight.js/lib/languages/php';
import python from 'highlight.js/lib/languages/python';
import ruby from 'highlight.js/lib/languages/ruby';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import swift from 'highlight.js/lib/languages/swift';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { Marked } from 'marked';
import { findProsePath, parseFileReference, prosePathAtStart } from '../src/extension/answerLinks';

for (const [name, language] of Object.entries({
  bash, c, cpp, csharp, css, diff, go, java, javascript, json, kotlin, markdown, php, python, ruby, rust, shell, sql, swift, typescript, xml, yaml,
})) hljs.registerLanguage(name, language);
hljs.registerAliases(['ts', 'tsx'], { languageName: 'typescript' });
hljs.registerAliases(['js', 'jsx', 'mjs', 'cjs'], { languageName: 'javascript' });
hljs.registerAliases(['py'], { languageName: 'python' });
hljs.registerAliases(['sh', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['html', 'svg'], { languageName: 'xml' });
hljs.registerAliases(['yml'], { languageName: 'yaml' });
hljs.registerAliases(['rs'], { languageName: 'rust' });
hljs.registerAliases(['cu', 'cuh', 'hpp', 'cc', 'h'], { languageName: 'cpp' });

// @ts-ignore acquireVsCodeApi is defined by the webview host
const vscode = acquireVsCodeApi();

/** @typedef {import('../src/extension/webviewMessages').ToWebview} ToWebview */
/** @typedef {import('../src/extension/webviewMessages').FromWebview} FromWebview */
/** @typedef {import('../src/extension/webviewMessages').ViewSummary} ViewSummary */

/** @param {FromWebview} message */
function post(message) {
  vscode.postMessage(message);
}

/** @param {string} s */
const escapeHtml = (s) => s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] ?? ch);

/** @param {{ path: string, line?: number | undefined, column?: number | undefined }} ref @param {string} inner */
const fileLink = (ref, inner) =>
  `<a href="#" class="file-link" data-path="${escapeHtml(ref.path)}" data-line="${ref.line ?? ''}" data-column="${ref.column ?? ''}" title="Open ${escapeHtml(ref.path)}">${inner}</a>`;

const marked = new Marked({
  gfm: true,
  breaks: false,
  extensions: [{
    // Bare paths in prose (src/cache/biBranchCache.ts:42) become links that open the file.
    name: 'filePath',
    level: 'inline',
    start: (src) => {
      const i = findProsePath(src);
      return i < 0 ? undefined : i;
    },
    tokenizer: (src) => {
      const found = prosePathAtStart(src);
      if (!found) return undefined;
      return { type: 'filePath', raw: src.slice(0, found.length), ref: found.ref };
    },
    renderer: (token) => fileLink(token.ref, escapeHtml(token.raw)),
  }],
  renderer: {
    code({ text, lang }) {
      const language = (lang ?? '').split(/\s+/)[0] ?? '';
      const known = language && hljs.getLanguage(language);
      const body = known ? hljs.highlight(text, { language, ignoreIllegals: true }).value : escapeHtml(text);
      // The Copy and Insert buttons are added after sanitising (addCodeActions), which lets no button through.
      return `<div class="code-block"><div class="code-toolbar"><span class="code-lang">${escapeHtml(language)}</span></div>` +
        `<pre><code class="hljs${known ? ` language-${escapeHtml(language)}` : ''}">${body}</code></pre></div>`;
    },
    codespan({ text }) {
      const ref = parseFileReference(text);
      return ref ? fileLink(ref, `<code>${escapeHtml(text)}</code>`) : `<code>${escapeHtml(text)}</code>`;
    },
    link({ href, tokens }) {
      const inner = this.parser.parseInline(tokens);
      const ref = parseFileReference(href);
      if (ref) return fileLink(ref, inner);
      if (/^(https?:|mailto:)/i.test(href)) return `<a href="${escapeHtml(href)}" title="${escapeHtml(href)}">${inner}</a>`;
      return inner; // command:, javascript:, anything else: text only
    },
    image({ text }) {
      return escapeHtml(text); // no remote content, ever
    },
  },
});

/** Markdown → safe HTML. DOMPurify runs last, whatever the renderer produced. @param {string} markdownText */
function render(markdownText) {
  const html = /** @type {string} */ (marked.parse(markdownText, { async: false }));
  return DOMPurify.sanitize(html, {
    FORBID_TAGS: ['style', 'form', 'input', 'textarea', 'select', 'button', 'iframe', 'img', 'video', 'audio'],
    FORBID_ATTR: ['style'],
  });
}

// ---- DOM --------------------------------------------------------------------------------------------------------

const messages = /** @type {HTMLElement} */ (document.getElementById('messages'));
const banner = /** @type {HTMLElement} */ (document.getElementById('banner'));
const form = /** @type {HTMLFormElement} */ (document.getElementById('composer'));
const input = /** @type {HTMLTextAreaElement} */ (document.getElementById('question'));
const sendButton = /** @type {HTMLButtonElement} */ (document.getElementById('send'));
const stopButton = /** @type {HTMLButtonElement} */ (document.getElementById('stop'));
const clearButton = /** @type {HTMLButtonElement} */ (document.getElementById('clear'));

/** @type {{ draft?: string }} */
const saved = vscode.getState() ?? {};
input.value = saved.draft ?? '';

/** The answer being streamed. @type {{ id: string, text: string, element: HTMLElement, frame: number } | undefined} */
let streaming;
let busy = false;

/** @param {'user' | 'assistant'} role @param {string} content @param {string | undefined} [note] @param {string | undefined} [noteKind] */
function addTurn(role, content, note, noteKind) {
  const turn = document.createElement('article');
  turn.className = `turn ${role}`;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : 'cskv';
  const body = document.createElement('div');
  body.className = 'body';
  if (role === 'user') body.textContent = content;
  else setAnswer(body, content);
  turn.append(who, body);
  if (note) turn.append(noteElement(note, noteKind));
  messages.append(turn);
  return body;
}

/** @param {HTMLElement} body @param {string} text */
function setAnswer(body, text) {
  body.innerHTML = render(text);
  for (const toolbar of body.querySelectorAll('.code-block > .code-toolbar')) addCodeActions(toolbar);
}

/** @param {Element} toolbar */
function addCodeActions(toolbar) {
  for (const [action, label, title] of [['copy', 'Copy', 'Copy the code'], ['insert', 'Insert', 'Insert the code at the cursor']]) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'code-action';
    b.dataset.action = action;
    b.textContent = label;
    b.title = title;
    toolbar.append(b);
  }
}

/** Why an answer ended early: muted for stopped or cut off, in the error colour when the sidecar failed.
 * @param {string} note @param {string | undefined} kind */
function noteElement(note, kind) {
  const el = document.createElement('div');
  el.className = kind === 'error' ? 'note error' : 'note';
  el.textContent = note;
  return el;
}

function scrollToEnd() {
  const nearEnd = document.scrollingElement ?? document.documentElement;
  nearEnd.scrollTop = nearEnd.scrollHeight;
}

function showEmpty() {
  if (messages.children.length > 0) return;
  const empty = document.createElement('div');
  empty.className = 'empty';
  empty.innerHTML = '<p>Ask anything about this workspace: the whole codebase is in the model\'s context.</p>';
  for (const q of ['What does this project do, and where does it start?', 'Which files would I change to add a new setting?']) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'suggestion';
    b.textContent = q;
    b.addEventListener('click', () => ask(q));
    empty.append(b);
  }
  messages.append(empty);
}

function clearEmpty() {
  messages.querySelector('.empty')?.remove();
}

/** @param {boolean} value */
function setBusy(value) {
  busy = value;
  sendButton.disabled = value;
  stopButton.hidden = !value;
  sendButton.hidden = value;
}

/** @param {ViewSummary} view */
function showView(view) {
  /** @type {Array<[string, Extract<FromWebview, { type: 'command' }>['command']]>} */
  const actions = [];
  let text = '';
  let kind = 'info';
  switch (view.state) {
    case 'no-model':
      text = 'No model is configured. Pick one found on this machine, download one, or choose a .gguf file or a model folder.';
      actions.push(['Select Model', 'cskv.selectModel']);
      kind = 'warning';
      break;
    case 'failed':
      text = `The model could not run: ${view.message}`;
      actions.push(['Retry', 'cskv.restartSidecar'], ['Select Model', 'cskv.selectModel'], ['Open Log', 'cskv.showLog']);
      kind = 'error';
      break;
    case 'stopped':
      text = view.message && view.message !== 'stopped' ? `cskv-code is stopped: ${view.message}.` : 'cskv-code is stopped.';
      actions.push(['Start', 'cskv.restartSidecar']);
      kind = 'warning';
      break;
    case 'starting':
    case 'loading-model':
      text = view.message ? `Starting: ${view.message}…` : 'Loading the model…';
      break;
    case 'indexing':
      if (view.update) {
        // A quiet line: which files are stale while they are read again.
        text = `${view.message.charAt(0).toUpperCase()}${view.message.slice(1)}.`;
        kind = 'quiet';
      } else {
        text = `Reading the workspace into the model (${view.message}). Answers use what is resident so far.`;
      }
      break;
    default:
      break;
  }
  if (!view.trusted) {
    text = `${text ? `${text} ` : ''}This workspace is not trusted, so its files are not read into the model: answers do not see your code until you trust it.`;
    actions.push(['Manage Workspace Trust', 'workbench.trust.manage']);
    if (kind === 'info') kind = 'warning';
  }
  banner.hidden = text === '';
  banner.className = `banner ${kind}`;
  banner.textContent = text;
  // Buttons on a line of their own, under the text.
  const row = document.createElement('div');
  row.className = 'actions';
  for (const [label, command] of actions) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'secondary';
    b.textContent = label;
    b.addEventListener('click', () => post({ type: 'command', command }));
    row.append(b);
  }
  if (actions.length > 0) banner.append(row);
  if (!streaming) setBusy(view.busy);
}

/** @param {string} question */
function ask(question) {
  const q = question.trim();
  if (!q || busy) return;
  post({ type: 'ask', question: q });
  input.value = '';
  vscode.setState({ draft: '' });
}

// ---- events -----------------------------------------------------------------------------------------------------

form.addEventListener('submit', (e) => {
  e.preventDefault();
  ask(input.value);
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ask(input.value);
  }
});
input.addEventListener('input', () => vscode.setState({ draft: input.value }));
stopButton.addEventListener('click', () => post({ type: 'stop' }));
clearButton.addEventListener('click', () => post({ type: 'clear' }));

messages.addEventListener('click', (e) => {
  const target = /** @type {HTMLElement} */ (e.target);
  const link = target.closest('a.file-link');
  if (link instanceof HTMLElement) {
    e.preventDefault();
    const line = Number(link.dataset.line) || undefined;
    const column = Number(link.dataset.column) || undefined;
    post({ type: 'openFile', ref: { path: link.dataset.path ?? '', line, column } });
    return;
  }
  const action = target.closest('button.code-action');
  if (action instanceof HTMLElement) {
    const code = action.closest('.code-block')?.querySelector('pre code')?.textContent ?? '';
    post({ type: action.dataset.action === 'insert' ? 'insert' : 'copy', text: code });
    if (action.dataset.action === 'copy') {
      action.textContent = 'Copied';
      setTimeout(() => (action.textContent = 'Copy'), 1500);
    }
  }
});

window.addEventListener('message', (event) => {
  // Only the extension posts to this webview; its messages are ToWebview.
  const m = /** @type {ToWebview} */ (event.data);
  switch (m.type) {
    case 'init':
      messages.replaceChildren();
      for (const turn of m.history) addTurn(turn.role, turn.content, turn.note, turn.noteKind);
      showEmpty();
      showView(m.view);
      scrollToEnd();
      break;
    case 'view':
      showView(m.view);
      break;
    case 'answerStart': {
      clearEmpty();
      addTurn('user', m.question);
      const body = addTurn('assistant', '');
      body.classList.add('streaming');
      body.innerHTML = '<span class="typing" aria-label="Thinking"><span></span><span></span><span></span></span>';
      streaming = { id: m.id, text: '', element: body, frame: 0 };
      setBusy(true);
      scrollToEnd();
      break;
    }
    case 'answerChunk': {
      const s = streaming;
      if (!s || s.id !== m.id) break;
      s.text += m.text;
      // One render per frame, however fast tokens arrive.
      if (!s.frame) {
        s.frame = requestAnimationFrame(() => {
          s.frame = 0;
          setAnswer(s.element, s.text);
          scrollToEnd();
        });
      }
      break;
    }
    case 'answerEnd': {
      const s = streaming;
      if (!s || s.id !== m.id) break;
      cancelAnimationFrame(s.frame);
      s.element.classList.remove('streaming');
      setAnswer(s.element, m.text || s.text);
      if (!m.text && !s.text && !m.note) s.element.textContent = '(no answer)';
      if (m.note) s.element.parentElement?.append(noteElement(m.note, m.noteKind));
      streaming = undefined;
      setBusy(false);
      scrollToEnd();
      input.focus();
      break;
    }
    case 'cleared':
      messages.replaceChildren();
      streaming = undefined;
      setBusy(false);
      showEmpty();
      break;
    case 'prefill':
      input.value = m.question;
      if (m.send) ask(m.question);
      else input.focus();
      break;
  }
});

post({ type: 'ready' });
