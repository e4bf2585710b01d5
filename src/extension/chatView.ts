// The chat view in the activity bar: questions about the workspace, answers streamed in from the sidecar and
// rendered as Markdown by media/chat.js. History is kept per workspace (workspaceState). The webview never talks
// to the sidecar itself; every message goes through the one `type` switch below, mirrored in media/chat.js.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { type FileReference, resolveFileReference } from './answerLinks';
import type { Ctx } from './ctx';
import { type StatusView, formatCount, isUpdate, stateSentence } from './format';
import type { FromWebview, NoteKind, StoredTurn, ToWebview, ViewSummary } from './webviewMessages';
import { localResourceRoots, webviewHtml } from './webviewHtml';

const HISTORY_KEY = 'cskv.chat.history';
/** Turns kept in the history and sent with a question (the resident workspace is the long context, not the chat). */
const MAX_TURNS = 40;
const TURNS_SENT = 6;

export class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewType = 'cskv.chat';

  private view: vscode.WebviewView | undefined;
  private inFlight: { id: string; cancel: vscode.CancellationTokenSource } | undefined;
  private readonly disposables: vscode.Disposable[] = [];
  /** A question asked (by a command) before the view existed. */
  private pending: { question: string; send: boolean } | undefined;

  constructor(private readonly ctx: Ctx) {
    this.disposables.push(ctx.onDidChangeView(() => this.post({ type: 'view', view: this.summary() })));
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
  <textarea id="question" rows="3" placeholder="Ask about this workspace (Enter to send, Shift+Enter for a new line)" aria-label="Question"></textarea>
  <div class="composer-actions">
    <button id="clear" type="button" class="secondary" title="Clear the conversation">Clear</button>
    <button id="stop" type="button" class="secondary" hidden title="Stop the answer">Stop</button>
    <button id="send" type="submit">Ask</button>
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

  async clear(): Promise<void> {
    this.stop();
    await this.ctx.extension.workspaceState.update(HISTORY_KEY, []);
    this.post({ type: 'cleared' });
  }

  dispose(): void {
    this.stop();
    for (const d of this.disposables) d.dispose();
  }

  private async receive(m: FromWebview): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.post({ type: 'init', history: this.history(), view: this.summary() });
        this.flushPending();
        if (!this.ctx.running) void this.ctx.ensureStarted();
        return;
      case 'ask':
        return this.answer(m.question);
      case 'stop':
        return this.stop();
      case 'clear':
        return this.clear();
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

  private async answer(question: string): Promise<void> {
    const q = question.trim();
    if (!q || this.inFlight) return;
    const id = crypto.randomUUID();
    const cancel = new vscode.CancellationTokenSource();
    this.inFlight = { id, cancel };
    const history = this.history();
    this.post({ type: 'answerStart', id, question: q });
    this.post({ type: 'view', view: this.summary() });
    let streamed = '';
    let text = '';
    let note: string | undefined;
    let noteKind: NoteKind | undefined;
    try {
      const editor = vscode.window.activeTextEditor;
      const activeFile = editor?.document.uri.scheme === 'file' ? editor.document.uri.fsPath : undefined;
      const result = await this.ctx.ask(
        { id, question: q, history: history.slice(-TURNS_SENT).map(({ role, content }) => ({ role, content })), activeFile },
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
    const turns: StoredTurn[] = [...history, { role: 'user', content: q }, { role: 'assistant', content: text, note, noteKind }];
    await this.ctx.extension.workspaceState.update(HISTORY_KEY, turns.slice(-MAX_TURNS));
    this.post({ type: 'view', view: this.summary() });
  }

  private history(): StoredTurn[] {
    return this.ctx.extension.workspaceState.get<StoredTurn[]>(HISTORY_KEY, []);
  }

  private summary(): ViewSummary {
    const v = this.ctx.view;
    const update = isUpdate(v);
    const p = v.progress;
    const message = update ? stateSentence(v) :
      v.state === 'indexing' && p && p.total > 0 ? `${formatCount(p.done)} of ${formatCount(p.total)} tokens` : v.message;
    return { state: v.state, message, trusted: v.trusted, busy: this.inFlight !== undefined, update };
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
