// The chat view in the activity bar: questions about the workspace, answers streamed in from the sidecar and
// rendered as Markdown by media/chat.js. Conversations are kept per workspace (conversations.ts). Chips above the
// question box show what the answer sees (chatContext.ts). The webview never talks to the sidecar itself; every
// message goes through the one `type` switch below, mirrored in media/chat.js.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Attachment } from '../protocol';
import { type FileReference, resolveFileReference } from './answerLinks';
import { chatContext, leftOutReason, mentionedFiles, modelLabel } from './chatContext';
import { maxAnswerTokens } from './config';
import { Conversations } from './conversations';
import type { Ctx } from './ctx';
import { type StatusView, formatCount, isPaused, isUpdate, stateSentence } from './format';
import type { AttachedChip, ChatContext, FromWebview, NoteKind, StoredTurn, ToWebview, ViewSummary } from './webviewMessages';
import { localResourceRoots, webviewHtml } from './webviewHtml';

/** Turns sent with a question (the resident workspace is the long context, not the chat). */
const TURNS_SENT = 6;
/** A file mentioned with @ is sent whole up to this size; a larger one is refused with a message. */
const MAX_ATTACHED_BYTES = 256 * 1024;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'cskv.chat';

  private view: vscode.WebviewView | undefined;
  private inFlight: { id: string; cancel: vscode.CancellationTokenSource } | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** A question asked (by a command) before the view existed. */
  private pending: { question: string; send: boolean } | undefined;
  private readonly conversations: Conversations;
  /** The selection of the last Ask About Selection, with its text as it was then. */
  private selection: (AttachedChip & { text: string }) | undefined;

  constructor(private readonly ctx: Ctx) {
    this.conversations = new Conversations(ctx.extension.workspaceState, () => crypto.randomUUID());
    this.disposables.push(
      ctx.onDidChangeView(() => {
        this.post({ type: 'view', view: this.summary() });
        this.postContext();
      }),
      vscode.window.onDidChangeActiveTextEditor(() => this.postContext()),
    );
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    const extensionUri = this.ctx.extension.extensionUri;
    view.webview.options = { enableScripts: true, localResourceRoots: localResourceRoots(extensionUri) };
    view.webview.html = webviewHtml(view.webview, extensionUri, {
      title: 'cskv chat',
      script: 'chat.js',
      style: 'chat.css',
      body: `<div id="banner" role="status" hidden></div>
<main id="messages" aria-live="polite"></main>
<form id="composer">
  <div id="chips" aria-label="What the answer sees"></div>
  <div id="mentions" role="listbox" aria-label="Files to mention" hidden></div>
  <textarea id="question" rows="3" placeholder="Ask about this workspace (@ to add a file; Enter to send, Shift+Enter for a new line)" aria-label="Question"></textarea>
  <div class="composer-actions">
    <button id="stop" type="button" class="secondary" hidden title="Stop the answer"><span class="codicon codicon-debug-stop" aria-hidden="true"></span> Stop</button>
    <button id="send" type="submit" title="Ask (Enter)"><span class="codicon codicon-send" aria-hidden="true"></span> Ask</button>
  </div>
</form>`,
    });
    this.disposables.push(
      view.webview.onDidReceiveMessage((m: FromWebview) => void this.receive(m)),
      view.onDidDispose(() => {
        this.view = undefined;
      }),
    );
  }

  /** Shows the view and asks `question` there (or puts it in the box when `send` is false). */
  async ask(question: string, send = true): Promise<void> {
    this.pending = { question, send };
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    if (this.view) this.flushPending();
  }

  stop(): void {
    this.inFlight?.cancel.cancel();
  }

  /** Puts a selection into the chat as a chip (Ask About Selection); the question is typed in the view. */
  async attachSelection(editor: vscode.TextEditor): Promise<void> {
    const rel = vscode.workspace.asRelativePath(editor.document.uri, false);
    const { start, end } = editor.selection;
    // A selection that ends at the start of a line does not take that line in.
    const last = end.character === 0 && end.line > start.line ? end.line - 1 : end.line;
    this.selection = { path: rel, lines: { start: start.line + 1, end: last + 1 }, text: editor.document.getText(editor.selection) };
    await this.ask('', false);
    this.postContext();
  }

  /** Deletes the current conversation; Undo in the view brings it back. */
  async clear(): Promise<void> {
    this.stop();
    await this.conversations.clear();
    this.post({ type: 'cleared', undo: this.conversations.canUndoClear });
  }

  async newConversation(): Promise<void> {
    this.stop();
    await this.conversations.startNew();
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    this.postInit();
  }

  /** A quick pick of the kept conversations, newest first; the chosen one is shown. */
  async switchConversation(): Promise<void> {
    const current = this.conversations.current().id;
    const items = this.conversations.list().map((c) => ({
      label: c.title || '(no question)',
      description: `${formatCount(c.turns.filter((t) => t.role === 'user').length)} ${c.turns.length === 2 ? 'question' : 'questions'}`,
      detail: new Date(c.updated).toLocaleString(),
      id: c.id,
      picked: c.id === current,
    }));
    if (items.length === 0) {
      void vscode.window.showInformationMessage('There are no conversations in this workspace yet.');
      return;
    }
    const picked = await vscode.window.showQuickPick(items, { title: 'Conversations in this workspace', placeHolder: 'Show a conversation' });
    if (!picked) return;
    this.stop();
    await this.conversations.select(picked.id);
    await vscode.commands.executeCommand(`${ChatViewProvider.viewType}.focus`);
    this.postInit();
  }

  dispose(): void {
    this.stop();
    for (const d of this.disposables) d.dispose();
  }

  private async receive(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.postInit();
        this.flushPending();
        if (!this.ctx.running) void this.ctx.ensureStarted();
        return;
      case 'ask':
        return this.answer(m.question, m.selection);
      case 'stop':
        return this.stop();
      case 'undoClear':
        if (await this.conversations.undoClear()) this.postInit();
        return;
      case 'dropSelection':
        this.selection = undefined;
        this.postContext();
        return;
      case 'showContext':
        return this.showContextLists();
      case 'copy':
        await vscode.env.clipboard.writeText(m.text);
        void vscode.window.setStatusBarMessage('$(check) Copied', 2000);
        return;
      case 'insert':
        return insertAtCursor(m.text);
      case 'openFile':
        return openReference(m.ref);
      case 'command':
        await vscode.commands.executeCommand(m.command);
        return;
    }
  }

  private async answer(question: string, withSelection: boolean): Promise<void> {
    const q = question.trim();
    if (!q || this.inFlight) return;
    let attachments: Attachment[];
    try {
      attachments = await this.attachmentsFor(q, withSelection);
    } catch (err) {
      void vscode.window.showWarningMessage((err as Error).message);
      return;
    }
    const attached: AttachedChip[] = attachments.map(({ path: p, lines }) => ({ path: p, lines }));
    this.selection = undefined;
    const id = crypto.randomUUID();
    const cancel = new vscode.CancellationTokenSource();
    this.inFlight = { id, cancel };
    const history = this.conversations.current().turns;
    const model = modelLabel(this.ctx.memory?.model);
    this.post({ type: 'answerStart', id, question: q, attached, model });
    this.post({ type: 'view', view: this.summary() });
    this.postContext();
    let streamed = '';
    let text = '';
    let note: string | undefined;
    let noteKind: NoteKind | undefined;
    try {
      const editor = vscode.window.activeTextEditor;
      const activeFile = editor?.document.uri.scheme === 'file' ? editor.document.uri.fsPath : undefined;
      const result = await this.ctx.ask(
        { id, question: q, history: history.slice(-TURNS_SENT).map(({ role, content }) => ({ role, content })), activeFile, attachments, maxAnswerTokens: maxAnswerTokens() },
        cancel.token,
        (chunk) => {
          streamed += chunk;
          this.post({ type: 'answerChunk', id, text: chunk });
        },
      );
      // A cancelled request may resolve with nothing: keep what was streamed.
      text = result?.text || streamed;
      if (result?.stopReason === 'cancelled' || cancel.token.isCancellationRequested) [note, noteKind] = ['Stopped.', 'stopped'];
      else if (result?.stopReason === 'max-tokens') [note, noteKind] = ['Cut off at the answer length limit.', 'info'];
    } catch (err) {
      text = streamed;
      [note, noteKind] = cancel.token.isCancellationRequested ? ['Stopped.', 'stopped'] : [describeAskError(err, this.ctx.view), 'error'];
    } finally {
      cancel.dispose();
      this.inFlight = undefined;
    }
    this.post({ type: 'answerEnd', id, text, note, noteKind });
    const turns: StoredTurn[] = [
      { role: 'user', content: q, attached: attached.length > 0 ? attached : undefined },
      { role: 'assistant', content: text, note, noteKind, model },
    ];
    await this.conversations.append(turns);
    this.post({ type: 'view', view: this.summary() });
  }

  /** The selection chip's text, then each file mentioned as `@path` (read as the editor has it, unsaved edits too). */
  private async attachmentsFor(question: string, withSelection: boolean): Promise<Attachment[]> {
    const out: Attachment[] = [];
    if (withSelection && this.selection) out.push({ path: this.selection.path, lines: this.selection.lines, text: this.selection.text });
    const root = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath;
    if (!root) return out;
    for (const rel of mentionedFiles(question, this.context().files)) {
      const uri = vscode.Uri.file(path.join(root, rel));
      const size = (await vscode.workspace.fs.stat(uri)).size;
      if (size > MAX_ATTACHED_BYTES) {
        throw new Error(`@${rel} is too large to attach (${formatCount(Math.round(size / 1024))} KB; the limit is ${MAX_ATTACHED_BYTES / 1024} KB). Select the part you mean and use Ask About Selection.`);
      }
      out.push({ path: rel, text: (await vscode.workspace.openTextDocument(uri)).getText() });
    }
    return out;
  }

  /** The workspace chip's lists: what the model has, and what was left out and why. */
  private async showContextLists(): Promise<void> {
    const memory = this.ctx.memory;
    if (!memory) return;
    const items: Array<vscode.QuickPickItem & { path?: string }> = [
      { label: `In the model's context (${formatCount(memory.residentFiles.length)})`, kind: vscode.QuickPickItemKind.Separator },
      ...memory.residentFiles.map((f) => ({ label: f.path, description: `${formatCount(f.tokens)} tokens`, path: f.path })),
      { label: `Left out (${formatCount(memory.excludedFiles.length)})`, kind: vscode.QuickPickItemKind.Separator },
      ...memory.excludedFiles.map((f) => ({ label: f.path, description: leftOutReason(f.reason), path: f.path })),
    ];
    const picked = await vscode.window.showQuickPick(items, { title: 'What the answers see', placeHolder: 'Open a file', matchOnDescription: true });
    if (picked?.path) await openReference({ path: picked.path });
  }

  private context(): ChatContext {
    const editor = vscode.window.activeTextEditor;
    const active = editor?.document.uri.scheme === 'file' ? vscode.workspace.asRelativePath(editor.document.uri, false) : undefined;
    return chatContext(this.ctx.memory, active, this.selection);
  }

  private postContext(): void {
    this.post({ type: 'context', context: this.context() });
  }

  private postInit(): void {
    const current = this.conversations.current();
    this.post({ type: 'init', history: current.turns, view: this.summary(), context: this.context() });
  }

  private summary(): ViewSummary {
    const v = this.ctx.view;
    const update = isUpdate(v);
    const paused = isPaused(v);
    const p = v.progress;
    const message = update || paused ? stateSentence(v) :
      v.state === 'indexing' && p && p.total > 0 ? `${formatCount(p.done)} of ${formatCount(p.total)} tokens` : v.message;
    return { state: v.state, message, trusted: v.trusted, busy: this.inFlight !== undefined, update, paused };
  }

  private flushPending(): void {
    if (!this.pending || !this.view) return;
    const { question, send } = this.pending;
    this.pending = undefined;
    this.post({ type: 'prefill', question, send });
  }

  private post(message: ToWebview): void {
    void this.view?.webview.postMessage(message);
  }
}

function describeAskError(err: unknown, view: StatusView): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/connection|disposed|closed|stream/i.test(message) || view.state === 'starting') {
    return 'The model stopped while answering. It is being restarted; ask again once the status bar shows it is ready.';
  }
  return message;
}

async function insertAtCursor(text: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) {
    void vscode.window.showInformationMessage('Open a file to insert the code into.');
    return;
  }
  await editor.edit((edit) => {
    for (const selection of editor.selections) {
      // A block put at the start of a line of code goes on lines of its own.
      const line = editor.document.lineAt(selection.start.line);
      const ownLine = selection.isEmpty && selection.start.character === 0 && !line.isEmptyOrWhitespace && !text.endsWith('\n');
      edit.replace(selection, ownLine ? `${text}\n` : text);
    }
  });
  await vscode.window.showTextDocument(editor.document, editor.viewColumn);
}

async function openReference(ref: FileReference): Promise<void> {
  const roots = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
  let file = resolveFileReference(ref, roots, (p) => fs.existsSync(p) && fs.statSync(p).isFile());
  if (!file && !ref.path.includes('/')) {
    // A bare file name: the workspace's only file of that name.
    const found = await vscode.workspace.findFiles(`**/${ref.path}`, undefined, 2);
    if (found.length === 1) file = found[0]!.fsPath;
  }
  if (!file) {
    void vscode.window.showInformationMessage(`"${ref.path}" is not a file of this workspace.`);
    return;
  }
  const line = Math.max(0, (ref.line ?? 1) - 1);
  const column = Math.max(0, (ref.column ?? 1) - 1);
  const position = new vscode.Position(line, column);
  await vscode.window.showTextDocument(vscode.Uri.file(file), { selection: new vscode.Range(position, position), preview: true });
}
