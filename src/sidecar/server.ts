// The sidecar: one LSP connection over stdio and one WorkspaceSession behind it. This file holds the connection and
// the handlers only; everything about models, caches and prompts lives in the session. Nothing but the protocol is
// written to stdout (console output goes to the client's log), and no network port is ever opened.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type CancellationToken, type Connection, ErrorCodes, FileChangeType, type InitializeParams, type InitializeResult,
  type InlineCompletionList, type InlineCompletionParams, ResponseError, TextDocumentSyncKind, TextDocuments, createConnection,
} from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import {
  AnswerChunkNotification, AskRequest, COMPRESSED_BITS_TEXT, HealthRequest, MemoryChangedNotification, MemoryRequest, PauseSyncRequest, RebuildContextRequest,
  type SidecarOptions, SidecarErrorCodes, type StatusParams, StatusNotification, isCompressedBits,
} from '../protocol';
import { type SpeedParams, SpeedNotification } from '../protocol';
import { RuntimeError } from '../runtime/errors';
import { BACKENDS, DEFAULTS, checkModelFolder } from '../shared/settings';
import { completionShape, looksBinary } from '../workspace/completionShape';
import { type SessionEvents, type SessionOptions, WorkspaceSession } from '../workspace/session';

/** What the handlers use of a WorkspaceSession (tests substitute their own). */
export type Session = Pick<WorkspaceSession, 'ask' | 'complete' | 'documentChanged' | 'fileChangedOnDisk' | 'rebuild' | 'pauseSync' | 'memoryStatus' | 'dispose'>;
export type OpenSession = (root: string, options: SessionOptions, events: SessionEvents) => Promise<Session>;

/** At most this many memory notifications per second. */
const MEMORY_NOTIFY_MS = 250;
const DISK_READ_LIMIT = 4 * 1024 * 1024;

/** Serves one client on `connection` (and starts listening); `openSession` is WorkspaceSession.open outside tests. */
export function serve(connection: Connection, openSession: OpenSession = (root, options, events) => WorkspaceSession.open(root, options, events)): void {
  const documents = new TextDocuments(TextDocument);
  let options: SidecarOptions | undefined;
  let root: string | undefined;
  let session: Session | undefined;
  /** False in an untrusted workspace: then no file, open or on disk, reaches the session (the one trust check). */
  let trusted = false;
  let opening: Promise<Session> | undefined;
  let failure: string | undefined;
  let memoryTimer: NodeJS.Timeout | undefined;
  let disposed = false;

  const log = (message: string): void => connection.console.log(message);
  /** A file the session cannot take is logged and skipped; the sidecar goes on serving the rest. */
  const guarded = (what: string, f: () => void): void => {
    try {
      f();
    } catch (err) {
      connection.console.error(`${what}: ${messageOf(err)} (the file is left out of the context)`);
    }
  };
  let state: StatusParams['state'] = 'starting';
  const status = (params: StatusParams): void => {
    state = params.state;
    void connection.sendNotification(StatusNotification, params);
  };
  const notifyMemory = (): void => {
    if (memoryTimer || !session) return;
    memoryTimer = setTimeout(() => {
      memoryTimer = undefined;
      if (session && !disposed) void connection.sendNotification(MemoryChangedNotification, session.memoryStatus());
    }, MEMORY_NOTIFY_MS);
  };

  /** The open session; waits while the model loads, and fails with the reason when it could not be loaded. */
  const ready = async (): Promise<Session> => {
    if (session) return session;
    if (opening) {
      try {
        return await opening;
      } catch {
        // reported below with the message the status bar shows
      }
    }
    throw new ResponseError(SidecarErrorCodes.ModelUnavailable, failure ?? 'the sidecar has not been initialised');
  };

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    options = parseSidecarOptions(params.initializationOptions);
    root = workspaceRoot(params);
    trusted = options.workspaceTrusted;
    return {
      capabilities: {
        textDocumentSync: { openClose: true, change: TextDocumentSyncKind.Incremental },
        inlineCompletionProvider: {},
      },
      serverInfo: { name: 'cskv-code sidecar' },
    };
  });

  connection.onInitialized(() => {
    const opts = options!;
    const problem = checkModelFolder(opts.modelPath);
    if (problem) {
      failure = problem;
      status({ state: 'failed', message: problem });
      return;
    }
    if (!trusted) log('workspace not trusted: no workspace file is read into the model');
    status({ state: 'loading-model', message: `loading ${path.basename(opts.modelPath)}` });
    const events: SessionEvents = {
      onStatus: (state, message, progress) => status({ state, message, progress }),
      onMemoryChanged: notifyMemory,
      onSpeed: (speed) => void connection.sendNotification(SpeedNotification, speed satisfies SpeedParams),
    };
    opening = openSession(root ?? process.cwd(), {
      modelDir: opts.modelPath,
      cskv: opts.cskv,
      window: opts.window,
      bits: opts.bits,
      backend: opts.backend,
      nativeLibrary: opts.nativeLibrary,
      budgetTokens: opts.contextTokenBudget,
      storageDir: opts.storagePath || undefined,
      excludes: opts.excludes,
      readWorkspace: trusted && root !== undefined,
      log,
    }, events);
    opening.then((s) => {
      if (disposed) {
        void s.dispose();
        return;
      }
      session = s;
      notifyMemory();
    }, (err: unknown) => {
      failure = `cannot load the model: ${messageOf(err)}`;
      connection.console.error(failure);
      status({ state: 'failed', message: failure });
    });
  });

  connection.onRequest(AskRequest, async (params, token) => {
    const s = await ready();
    const abort = abortOn(token);
    try {
      return await s.ask({
        question: params.question,
        history: params.history ?? [],
        activeFile: params.activeFile,
        attachments: params.attachments,
        maxNewTokens: params.maxAnswerTokens,
        signal: abort.signal,
        onText: (text) => void connection.sendNotification(AnswerChunkNotification, { id: params.id, text }),
      });
    } catch (err) {
      throw asResponseError(err);
    } finally {
      abort.dispose();
    }
  });

  connection.onRequest(HealthRequest, () => ({ state }));

  connection.onRequest(MemoryRequest, async () => (await ready()).memoryStatus());

  connection.onRequest(RebuildContextRequest, async () => {
    const s = await ready();
    // The rebuild reports progress through `cskv/status`; the request returns once it is under way.
    s.rebuild().catch((err: unknown) => connection.console.error(`rebuild failed: ${messageOf(err)}`));
  });

  connection.onRequest(PauseSyncRequest, async () => {
    try {
      return await (await ready()).pauseSync();
    } catch (err) {
      throw asResponseError(err);
    }
  });

  connection.languages.inlineCompletion.on(async (params: InlineCompletionParams, token: CancellationToken): Promise<InlineCompletionList> => {
    const empty: InlineCompletionList = { items: [] };
    // While the model loads, typing must not wait for it. In an untrusted workspace no file goes into the model.
    if (!session || !trusted || token.isCancellationRequested) return empty;
    const document = documents.get(params.textDocument.uri);
    const file = document && filePathOf(document.uri);
    if (!document || !file) return empty;
    const shape = completionShape(document.getText(), document.offsetAt(params.position));
    if (!shape) return empty;
    const abort = abortOn(token);
    try {
      const text = await session.complete({ path: file, ...shape, signal: abort.signal });
      if (token.isCancellationRequested || text.trim() === '') return empty;
      return { items: [{ insertText: text, range: { start: params.position, end: params.position } }] };
    } catch (err) {
      if (token.isCancellationRequested) return empty;
      throw asResponseError(err);
    } finally {
      abort.dispose();
    }
  });

  // The editor's view of a file replaces the disk's as soon as it changes; the session debounces the re-prefill.
  documents.onDidChangeContent((e) => {
    const file = filePathOf(e.document.uri);
    if (!session || !file || !trusted) return;
    const text = e.document.getText();
    if (looksBinary(text)) return;
    guarded(`${file} changed`, () => session!.documentChanged(file, text));
  });

  connection.onDidChangeWatchedFiles((params) => {
    if (!session || !trusted) return;
    for (const change of params.changes) {
      const file = filePathOf(change.uri);
      if (!file) continue;
      // An open document is followed through the editor, not the disk.
      if (change.type !== FileChangeType.Deleted && documents.get(change.uri)) continue;
      if (change.type !== FileChangeType.Deleted && !readableSize(file)) continue;
      guarded(`${file} changed on disk`, () => session!.fileChangedOnDisk(file));
    }
  });

  connection.onShutdown(async () => {
    disposed = true;
    clearTimeout(memoryTimer);
    const s = session ?? (await opening?.catch(() => undefined));
    await s?.dispose();
  });

  documents.listen(connection);
  connection.listen();
}

/** Checks `initializationOptions` and fills in defaults; throws a ResponseError naming the bad field. */
export function parseSidecarOptions(value: unknown): SidecarOptions {
  if (typeof value !== 'object' || value === null) throw new ResponseError(ErrorCodes.InvalidParams, 'initializationOptions must be the SidecarOptions object');
  const o = value as Record<string, unknown>;
  const bad = (field: string, what: string): never => {
    throw new ResponseError(ErrorCodes.InvalidParams, `initializationOptions.${field} must be ${what}, got ${JSON.stringify(o[field])}`);
  };
  if (typeof o.modelPath !== 'string' || o.modelPath.trim() === '') bad('modelPath', 'the path of a model folder or GGUF file');
  const backend = o.backend ?? DEFAULTS.backend;
  if (!BACKENDS.includes(backend as SidecarOptions['backend'])) bad('backend', BACKENDS.map((b) => `"${b}"`).join(', '));
  const cskv = o.cskv ?? DEFAULTS.cskv;
  if (typeof cskv !== 'string' || cskv === '') bad('cskv', 'a file path, "auto" or "off"');
  const window = o.window ?? undefined;
  if (window !== undefined && (!Number.isInteger(window) || (window as number) < 1)) bad('window', 'a positive integer');
  const bits = o.bits ?? undefined;
  if (bits !== undefined && !isCompressedBits(bits)) bad('bits', COMPRESSED_BITS_TEXT);
  const budget = o.contextTokenBudget ?? DEFAULTS.contextTokenBudget;
  if (!Number.isInteger(budget) || (budget as number) < 0) bad('contextTokenBudget', 'a non-negative integer');
  const excludes = o.excludes ?? [];
  if (!Array.isArray(excludes) || excludes.some((e) => typeof e !== 'string')) bad('excludes', 'a list of glob patterns');
  return {
    modelPath: o.modelPath as string,
    backend: backend as SidecarOptions['backend'],
    cskv: cskv as string,
    window: window as number | undefined,
    bits: bits as SidecarOptions['bits'],
    contextTokenBudget: budget as number,
    storagePath: typeof o.storagePath === 'string' ? o.storagePath : '',
    workspaceTrusted: o.workspaceTrusted === true,
    excludes: excludes as string[],
    nativeLibrary: typeof o.nativeLibrary === 'string' && o.nativeLibrary !== '' ? o.nativeLibrary : undefined,
  };
}

function workspaceRoot(params: InitializeParams): string | undefined {
  const uri = params.workspaceFolders?.[0]?.uri ?? params.rootUri ?? undefined;
  return uri ? filePathOf(uri) : undefined;
}

/** The file-system path of a file: URI; undefined for other schemes (untitled, git, output, ...). */
function filePathOf(uri: string): string | undefined {
  if (!uri.startsWith('file:')) return undefined;
  try {
    return fileURLToPath(uri);
  } catch {
    return undefined;
  }
}

function readableSize(file: string): boolean {
  try {
    return fs.statSync(file).size <= DISK_READ_LIMIT;
  } catch {
    return true; // gone again: the session drops it
  }
}

function abortOn(token: CancellationToken): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  const listener = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => listener.dispose() };
}

function asResponseError(err: unknown): ResponseError<unknown> {
  if (err instanceof ResponseError) return err;
  if (err instanceof RuntimeError) return new ResponseError(SidecarErrorCodes.RuntimeFailed, err.message, { code: err.code });
  return new ResponseError(SidecarErrorCodes.RuntimeFailed, messageOf(err));
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

if (require.main === module) {
  // `--stdio` on the command line: vscode-languageserver reads stdin, writes stdout and sends console output to the client.
  serve(createConnection());
}
