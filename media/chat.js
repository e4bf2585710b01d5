// @ts-check
// The chat webview: renders the conversation, streams answers in as Markdown (src/extension/answerMarkdown.ts,
// sanitised by DOMPurify, code highlighted by highlight.js), and mirrors the extension's message switch (src/extension/chatView.ts).
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
import { answerHtml } from '../src/extension/answerMarkdown';

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
/** @typedef {import('../src/extension/webviewMessages').ChatContext} ChatContext */
/** @typedef {import('../src/extension/webviewMessages').AttachedChip} AttachedChip */
/** @typedef {import('../src/extension/webviewMessages').StoredTurn} StoredTurn */

/** @param {FromWebview} message */
function post(message) {
  vscode.postMessage(message);
}

/** Markdown → safe HTML. DOMPurify runs last, whatever the renderer produced. @param {string} markdownText */
function render(markdownText) {
  const html = answerHtml(markdownText);
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
const chips = /** @type {HTMLElement} */ (document.getElementById('chips'));
const mentions = /** @type {HTMLElement} */ (document.getElementById('mentions'));

/** @type {{ draft?: string }} */
const saved = vscode.getState() ?? {};
input.value = saved.draft ?? '';

/** The answer being streamed. @type {{ id: string, text: string, element: HTMLElement, frame: number } | undefined} */
let streaming;
let busy = false;
/** False while there is no model to answer (none chosen, or it failed to load): the banner says what to do. */
let canAsk = true;

/** A button with a codicon and a label (the label hidden when `iconOnly`, kept as its accessible name).
 * @param {string} icon @param {string} label @param {string} title @param {boolean} [iconOnly] */
function iconButton(icon, label, title, iconOnly = false) {
  const b = document.createElement('button');
  b.type = 'button';
  b.title = title;
  const i = document.createElement('span');
  i.className = `codicon codicon-${icon}`;
  i.setAttribute('aria-hidden', 'true');
  b.append(i);
  if (iconOnly) b.setAttribute('aria-label', label);
  else b.append(` ${label}`);
  return b;
}

/** `src/geometry.py:3-9`, or the path of a whole file. @param {AttachedChip} a */
const chipText = (a) => (a.lines ? `${a.path}:${a.lines.start}${a.lines.end !== a.lines.start ? `-${a.lines.end}` : ''}` : a.path);

/** @param {AttachedChip[]} attached */
function attachedChips(attached) {
  const row = document.createElement('div');
  row.className = 'attached';
  for (const a of attached) {
    const chip = document.createElement('a');
    chip.href = '#';
    chip.className = 'chip file-link';
    chip.dataset.path = a.path;
    chip.dataset.line = a.lines ? String(a.lines.start) : '';
    chip.title = `Open ${chipText(a)}`;
    const icon = document.createElement('span');
    icon.className = `codicon codicon-${a.lines ? 'selection' : 'file'}`;
    chip.append(icon, ` ${chipText(a)}`);
    row.append(chip);
  }
  return row;
}

/** @param {StoredTurn} turn */
function addTurn(turn) {
  const { role, content } = turn;
  const article = document.createElement('article');
  article.className = `turn ${role}`;
  const who = document.createElement('div');
  who.className = 'who';
  who.textContent = role === 'user' ? 'You' : (turn.model ?? 'cskv');
  const body = document.createElement('div');
  body.className = 'body';
  article.append(who);
  if (role === 'user') {
    body.textContent = content;
    if (turn.attached?.length) article.append(attachedChips(turn.attached));
  } else {
    setAnswer(body, content);
  }
  article.append(body);
  if (turn.note) article.append(noteElement(turn.note, turn.noteKind));
  if (role === 'assistant') article.append(answerActions());
  messages.append(article);
  return body;
}

/** Copy the answer and ask its question again, under every answer. */
function answerActions() {
  const row = document.createElement('div');
  row.className = 'answer-actions';
  const copy = iconButton('copy', 'Copy answer', 'Copy the answer (Markdown)', true);
  copy.dataset.action = 'copy-answer';
  const retry = iconButton('refresh', 'Ask again', 'Ask this question again', true);
  retry.dataset.action = 'retry';
  row.append(copy, retry);
  return row;
}

/** @param {HTMLElement} body @param {string} text */
function setAnswer(body, text) {
  // The Markdown as the model wrote it, for Copy answer.
  body.dataset.markdown = text;
  body.innerHTML = render(text);
  for (const toolbar of body.querySelectorAll('.code-block > .code-toolbar')) addCodeActions(toolbar);
}

/** @param {Element} toolbar */
function addCodeActions(toolbar) {
  for (const [action, icon, label, title] of [['copy', 'copy', 'Copy', 'Copy the code'], ['insert', 'insert', 'Insert', 'Insert the code at the cursor']]) {
    const b = iconButton(icon, label, title);
    b.className = 'code-action';
    b.dataset.action = action;
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
  if (messages.querySelector(".turn, .empty")) return;
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
  sendButton.disabled = value || !canAsk;
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
    case 'ready':
      if (view.paused) {
        // A quiet line: the stopped update, what is not in the context, and how to resume.
        text = `${view.message.charAt(0).toUpperCase()}${view.message.slice(1)}.`;
        actions.push(['Rebuild Workspace Context', 'cskv.rebuildContext']);
        kind = 'quiet';
      }
      break;
    case 'indexing':
      if (view.update) {
        // A quiet line: which files are stale while they are read again.
        text = `${view.message.charAt(0).toUpperCase()}${view.message.slice(1)}.`;
        actions.push(['Stop Updating', 'cskv.stopUpdating']);
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
  canAsk = view.state !== 'no-model' && view.state !== 'failed';
  sendButton.title = canAsk ? 'Ask (Enter)' : 'Choose a model first';
  if (!streaming) setBusy(view.busy);
}

/** @param {string} question @param {boolean} [withContext] false for Ask again: the question as it was, no chip */
function ask(question, withContext = true) {
  const q = question.trim();
  if (!q || busy || !canAsk) return;
  post({ type: 'ask', question: q, selection: withContext && context.selection !== undefined });
  if (!withContext) return;
  input.value = '';
  hideMentions();
  vscode.setState({ draft: '' });
}

// ---- context chips and @ mentions --------------------------------------------------------------------------------

/** @type {ChatContext} */
let context = { files: [] };

/** @param {ChatContext} c */
function showContext(c) {
  context = c;
  chips.replaceChildren();
  if (c.workspace) {
    const n = c.workspace.resident;
    const chip = iconButton('database', `${n.toLocaleString('en-US')} ${n === 1 ? 'file' : 'files'}${c.workspace.leftOut > 0 ? ` · ${c.workspace.leftOut.toLocaleString('en-US')} left out` : ''}`,
      'The workspace files in the model\'s context; click for the lists');
    chip.className = 'chip';
    chip.dataset.chip = 'workspace';
    chips.append(chip);
  }
  if (c.active) {
    const name = c.active.path.split('/').pop() ?? c.active.path;
    const chip = document.createElement('span');
    chip.className = c.active.resident ? 'chip' : 'chip warning';
    chip.dataset.chip = 'active';
    const icon = document.createElement('span');
    icon.className = `codicon codicon-${c.active.resident ? 'file' : 'warning'}`;
    chip.append(icon, c.active.resident ? ` ${name}` : ` ${name} is not in the context`);
    chip.title = c.active.resident ? `${c.active.path}: open in the editor and in the model's context`
      : `${c.active.path} is outside the context budget: the answer does not see it. Mention it as @${c.active.path} to include it.`;
    chips.append(chip);
  }
  if (c.selection) {
    const chip = document.createElement('span');
    chip.className = 'chip selection';
    chip.dataset.chip = 'selection';
    const icon = document.createElement('span');
    icon.className = 'codicon codicon-selection';
    const remove = iconButton('close', 'Remove the selection', 'Do not send the selection', true);
    remove.className = 'chip-remove';
    remove.addEventListener('click', () => post({ type: 'dropSelection' }));
    chip.append(icon, ` ${chipText(c.selection)}`, remove);
    chip.title = `The selection goes with the question: ${chipText(c.selection)}`;
    chips.append(chip);
  }
  chips.hidden = chips.children.length === 0;
}

/** The `@word` the caret is in, if any. */
function mentionAtCaret() {
  const upto = input.value.slice(0, input.selectionStart);
  const m = /(?:^|\s)@([^\s]*)$/.exec(upto);
  return m ? { query: m[1] ?? '', start: upto.length - (m[1] ?? '').length } : undefined;
}

let mentionIndex = 0;

function updateMentions() {
  const at = mentionAtCaret();
  if (!at) return hideMentions();
  const q = at.query.toLowerCase();
  const found = context.files.filter((f) => f.toLowerCase().includes(q)).slice(0, 8);
  if (found.length === 0) return hideMentions();
  mentionIndex = Math.min(mentionIndex, found.length - 1);
  mentions.replaceChildren(...found.map((f, i) => {
    const row = document.createElement('div');
    row.className = i === mentionIndex ? 'mention active' : 'mention';
    row.setAttribute('role', 'option');
    row.setAttribute('aria-selected', String(i === mentionIndex));
    row.dataset.path = f;
    row.textContent = f;
    row.addEventListener('mousedown', (e) => {
      e.preventDefault();
      chooseMention(f);
    });
    return row;
  }));
  mentions.hidden = false;
}

function hideMentions() {
  mentions.hidden = true;
  mentionIndex = 0;
}

/** @param {string} file */
function chooseMention(file) {
  const at = mentionAtCaret();
  if (!at) return;
  const end = input.selectionStart;
  input.value = `${input.value.slice(0, at.start)}${file} ${input.value.slice(end)}`;
  const caret = at.start + file.length + 1;
  input.setSelectionRange(caret, caret);
  hideMentions();
  vscode.setState({ draft: input.value });
  input.focus();
}

// ---- events -----------------------------------------------------------------------------------------------------

form.addEventListener('submit', (e) => {
  e.preventDefault();
  ask(input.value);
});
input.addEventListener('keydown', (e) => {
  if (!mentions.hidden) {
    const rows = [...mentions.querySelectorAll('.mention')];
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      mentionIndex = (mentionIndex + (e.key === 'ArrowDown' ? 1 : rows.length - 1)) % rows.length;
      updateMentions();
      return;
    }
    if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      chooseMention(/** @type {HTMLElement} */ (rows[mentionIndex]).dataset.path ?? '');
      return;
    }
    if (e.key === 'Escape') {
      e.preventDefault();
      hideMentions();
      return;
    }
  }
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ask(input.value);
  }
});
input.addEventListener('input', () => {
  vscode.setState({ draft: input.value });
  updateMentions();
});
input.addEventListener('blur', () => hideMentions());
stopButton.addEventListener('click', () => post({ type: 'stop' }));
chips.addEventListener('click', (e) => {
  const chip = /** @type {HTMLElement} */ (e.target).closest('[data-chip="workspace"]');
  if (chip) post({ type: 'showContext' });
});

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
  const answerAction = target.closest('.answer-actions button');
  if (answerAction instanceof HTMLElement) {
    const turn = answerAction.closest('.turn');
    if (answerAction.dataset.action === 'copy-answer') {
      post({ type: 'copy', text: turn?.querySelector('.body')?.getAttribute('data-markdown') ?? '' });
      const icon = answerAction.querySelector('.codicon');
      icon?.classList.replace('codicon-copy', 'codicon-check');
      setTimeout(() => icon?.classList.replace('codicon-check', 'codicon-copy'), 1500);
    } else {
      // The question this answer belongs to: the user turn just before it.
      const question = turn?.previousElementSibling?.classList.contains('user') ? turn.previousElementSibling.querySelector('.body')?.textContent : undefined;
      if (question) ask(question, false);
    }
    return;
  }
  const undo = target.closest('button[data-action="undo-clear"]');
  if (undo) {
    post({ type: 'undoClear' });
    return;
  }
  const action = target.closest('button.code-action');
  if (action instanceof HTMLElement) {
    const code = action.closest('.code-block')?.querySelector('pre code')?.textContent ?? '';
    post({ type: action.dataset.action === 'insert' ? 'insert' : 'copy', text: code });
    if (action.dataset.action === 'copy') {
      action.lastChild && (action.lastChild.textContent = ' Copied');
      setTimeout(() => action.lastChild && (action.lastChild.textContent = ' Copy'), 1500);
    }
  }
});

window.addEventListener('message', (event) => {
  // Only the extension posts to this webview; its messages are ToWebview.
  const m = /** @type {ToWebview} */ (event.data);
  switch (m.type) {
    case 'init':
      messages.replaceChildren();
      streaming = undefined;
      for (const turn of m.history) addTurn(turn);
      showEmpty();
      showView(m.view);
      showContext(m.context);
      scrollToEnd();
      break;
    case 'view':
      showView(m.view);
      break;
    case 'context':
      showContext(m.context);
      break;
    case 'answerStart': {
      clearEmpty();
      messages.querySelector('.cleared')?.remove();
      addTurn({ role: 'user', content: m.question, attached: m.attached });
      const body = addTurn({ role: 'assistant', content: '', model: m.model });
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
      if (m.note) s.element.after(noteElement(m.note, m.noteKind));
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
      if (m.undo) {
        const line = document.createElement('div');
        line.className = 'cleared';
        line.setAttribute('role', 'status');
        const undoButton = iconButton('discard', 'Undo', 'Bring the conversation back');
        undoButton.className = 'secondary';
        undoButton.dataset.action = 'undo-clear';
        line.append('Conversation cleared. ', undoButton);
        messages.append(line);
      }
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
