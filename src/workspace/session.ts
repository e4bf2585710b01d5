// One workspace with its model: the engine, the tokenizer and the resident workspace context, and the two things
// people do with them: ask about the codebase, and complete code. A question is appended after the resident context
// and truncated away afterwards. A completion in the file typed in continues that file where it is resident (cut at
// the cursor) and the context prefills the file's rest again once typing pauses; elsewhere it is appended too.
import * as path from 'node:path';
import type { AskResult, Attachment, ChatTurn, CompressedBits, GpuAdapter, GenerationSpeed, MemoryStatus, PrefillProgress } from '../protocol';
import { type BackendChoice, loadEngineFor, resolveCskv } from '../runtime/backends/selectBackend';
import type { Engine } from '../runtime/engine';
import { compressedLength, cutWithoutRecompute } from '../runtime/cache/cachePolicy';
import { RuntimeError } from '../runtime/errors';
import { DEFAULTS } from '../shared/settings';
import { readModelConfig } from '../runtime/model/config';
import { type GenerateResult, generate } from '../runtime/generate';
import { type ChatMessage, ModelTokenizer } from '../runtime/tokenizer';
import type { CompletionShape } from './completionShape';
import type { WeightFormat } from '../runtime/model/weightFormat';
import { type RepoFormat, repoFormat, segmentHead } from './layout';
import { Mutex } from './mutex';
import { commonPrefixLength } from './tokenPrefix';
import { contextFile } from './persistence';
import { WorkspaceContext, type WorkspaceContextOptions } from './workspaceContext';

export interface SessionOptions {
  modelDir: string;
  /** A cskv.safetensors path, 'auto' (beside the model when present) or 'off'. */
  cskv: string;
  window?: number | undefined;
  bits?: CompressedBits | undefined;
  weights?: WeightFormat | undefined;
  backend?: BackendChoice;
  /** The native (CUDA) addon to load instead of the bundled one (the cskv.nativeLibrary setting). */
  nativeLibrary?: string | undefined;
  budgetTokens: number;
  /** Where the context is saved between runs; not saved when undefined. */
  storageDir?: string | undefined;
  excludes?: string[];
  /** False in an untrusted workspace: no workspace file is read into the model. */
  readWorkspace: boolean;
  /** Ranks files when the workspace exceeds the budget (the question, for the CLI). */
  focus?: string;
  pinned?: string[];
  /** Debounce before an edit is prefilled, in ms. */
  editDebounceMs?: number;
  /**
   * Keep each completion's prompt in the cache for the next one to reuse up to the first changed token (default
   * true). False: every completion prefills its whole prompt and leaves the cache as it found it (the request path
   * before; bench/completion.ts measures it as the baseline).
   */
  reuseCompletionPrompt?: boolean;
  /**
   * 'in-file' (default): a completion in the layout's last file (the one typed in) continues the resident file, cut at
   * the cursor, with a FIM tail (suffix) after it; elsewhere, or before the context reaches that file, it carries the
   * window after the context. 'window': always the window (the request path before; bench/completion.ts compares).
   */
  completionPrompt?: 'in-file' | 'window';
  log?: (message: string) => void;
}

export interface SessionEvents {
  onStatus(state: 'loading-model' | 'indexing' | 'ready', message: string, progress?: PrefillProgress): void;
  onMemoryChanged(): void;
  /** How fast an answer or a completion was generated. */
  onSpeed?(speed: GenerationSpeed): void;
}

export interface AskParams {
  question: string;
  history?: ChatTurn[];
  activeFile?: string | undefined;
  attachments?: Attachment[] | undefined;
  signal?: AbortSignal | undefined;
  onText?: (text: string) => void;
  maxNewTokens?: number;
}

/** A completion at a cursor of `path`: its shape (completionShape.ts, the window already applied). */
export interface CompleteParams extends CompletionShape {
  path: string;
  signal?: AbortSignal | undefined;
  maxNewTokens?: number;
}

/**
 * What a completion left in the cache for the next one (Mutex leftover of kind COMPLETION): a window prompt after
 * `base`, or (inFile) the resident file cut at the cursor with its FIM tail, which the context mirrors itself.
 */
type KeptPrompt = { inFile: false; base: number; tokens: number[] } | { inFile: true };
const COMPLETION = 'completion';

/** Quiet time after an edit before it is prefilled. */
const EDIT_DEBOUNCE_MS = 750;
const END_OF_TURN = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<|endoftext|>', '</s>', '<|end_of_text|>'];
const COMPLETION_STOPS = ['<|endoftext|>', '<|file_sep|>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>', '<|fim_pad|>', '<|repo_name|>'];

export class WorkspaceSession {
  private editTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** An in-file completion left the last file cut at its cursor; the context prefills the rest once typing pauses. */
  private fileCutAtCursor = false;
  private readonly format: RepoFormat;

  private constructor(
    readonly root: string,
    readonly engine: Engine,
    readonly tokenizer: ModelTokenizer,
    private context: WorkspaceContext | undefined,
    /** Taken by every request and by each step of the background prefill: one engine, one user at a time. */
    private readonly lock: Mutex,
    private readonly contextOptions: WorkspaceContextOptions,
    readonly backendReason: string,
    /** The WebGPU backend's adapter (name, vendor, memory); undefined on the other backends. */
    private readonly adapter: GpuAdapter | undefined,
    private readonly options: SessionOptions,
    private readonly events: SessionEvents,
  ) {
    this.format = repoFormat(tokenizer);
  }

  /** Loads the model, then scans and starts prefilling the workspace in the background. */
  static async open(root: string, options: SessionOptions, events: SessionEvents): Promise<WorkspaceSession> {
    const modelDir = path.resolve(options.modelDir);
    events.onStatus('loading-model', `loading ${path.basename(modelDir)}`);
    const tokenizer = ModelTokenizer.load(modelDir, readModelConfig(modelDir));
    const { engine, reason, webgpu } = await loadEngineFor(options.backend ?? 'auto', modelDir, {
      cskv: resolveCskv(options.cskv, modelDir), window: options.window, bits: options.bits, weights: options.weights,
    }, { nativeLibrary: options.nativeLibrary });
    const maxContext = engine.info.config.maxPositions;
    // Room for a question and its answer stays free after the resident context.
    const budget = Math.min(options.budgetTokens, maxContext - Math.min(2048, Math.floor(maxContext / 4)));
    const lock = new Mutex();
    const contextOptions: WorkspaceContextOptions = {
      root, budgetTokens: budget, excludes: options.excludes, focus: options.focus, pinned: options.pinned,
      storageFile: options.storageDir ? contextFile(options.storageDir, root) : undefined,
      onProgress: (p) => events.onStatus(p.done >= p.total ? 'ready' : 'indexing', `${p.done} of ${p.total} tokens resident`, p),
      onChange: () => events.onMemoryChanged(),
      log: options.log,
    };
    const context = options.readWorkspace ? new WorkspaceContext(engine, tokenizer, lock, contextOptions) : undefined;
    const adapter = engine.info.backend === 'webgpu' && webgpu?.available ? webgpu.adapter.gpu : undefined;
    const session = new WorkspaceSession(path.resolve(root), engine, tokenizer, context, lock, contextOptions, reason, adapter, options, events);
    if (context) {
      events.onStatus('indexing', 'scanning the workspace');
      await context.initialise();
      void session.syncContext();
    } else {
      events.onStatus('ready', 'workspace not read (untrusted): answers use no workspace context');
    }
    return session;
  }

  /** The resident workspace context; undefined in an untrusted workspace. */
  get workspaceContext(): WorkspaceContext | undefined {
    return this.context;
  }

  /** Resolves once the whole layout is resident (immediately without a workspace). */
  async whenResident(): Promise<void> {
    await this.context?.sync();
  }

  private async syncContext(): Promise<void> {
    if (!this.context || this.disposed) return;
    try {
      await this.context.sync();
      if (this.disposed) return;
      await this.lock.run(async () => this.context!.save());
      const pending = this.context.isPaused ? this.context.pendingFiles.length : 0;
      this.events.onStatus('ready', this.context.isPaused
        ? `update paused: ${this.context.residentTokens} tokens resident, ${pending} ${pending === 1 ? 'file' : 'files'} not in the context`
        : `${this.context.residentTokens} tokens of workspace context resident`);
    } catch (err) {
      this.options.log?.(`workspace context: ${(err as Error).message}`);
    }
    this.events.onMemoryChanged();
  }

  async ask(params: AskParams): Promise<AskResult> {
    const asked = performance.now();
    // A question sees the file being typed in whole, not cut where the last completion stopped: the rest of that one
    // file is prefilled first (what the typing pause would do). Other pending updates do not hold a question up.
    if (this.fileCutAtCursor) {
      this.fileCutAtCursor = false;
      await this.flushEdits();
    }
    return this.lock.run(async () => {
      // Cancelled while it waited for the engine: nothing to do (checked again between every step by generate).
      if (params.signal?.aborted) return { text: '', stopReason: 'cancelled' };
      const base = this.engine.length;
      try {
        const messages: ChatMessage[] = [
          { role: 'system', content: this.systemPrompt(params.activeFile) },
          ...(params.history ?? []),
          { role: 'user', content: withAttachments(params.question, params.attachments ?? []) },
        ];
        let prompt = this.tokenizer.encodeChat(messages, { addGenerationPrompt: true });
        // The model's BOS already starts the resident context.
        if (base > 0 && prompt[0] === this.tokenizer.bosTokenId) prompt = prompt.slice(1);
        let firstToken: number | undefined;
        const result = await generate(this.engine, prompt, {
          greedy: true,
          maxNewTokens: this.roomFor(prompt.length, params.maxNewTokens ?? DEFAULTS.answerTokens),
          stopTokens: this.stopIds(END_OF_TURN),
          signal: params.signal,
          tokenizer: this.tokenizer,
          onText: params.onText,
          onToken: () => {
            firstToken ??= performance.now();
          },
        });
        this.reportSpeed('answer', result, asked, firstToken, { promptTokens: prompt.length, prefilledTokens: prompt.length });
        return { text: result.text, stopReason: result.stopReason };
      } finally {
        await this.engine.truncate(base);
      }
    });
  }

  /**
   * A completion at the cursor. In the file typed in (the layout's last, laid out for FIM) the prompt is the resident
   * file itself: the cache is cut at the first token where the file up to the cursor differs from what it holds, and
   * only the rest, `<|fim_suffix|>`, the short suffix and `<|fim_middle|>` are prefilled; neither the window nor the
   * file is sent again, and a typing pause (the context prefilling the file's rest) costs the next keystroke nothing.
   * Elsewhere the prompt is the file's header and the FIM window after the resident context.
   * Either way the prompt stays in the cache after the answer and the next completion prefills only from its first
   * token that differs. Any other use of the engine (a question, the background prefill) undoes the kept prompt
   * first (Mutex leftovers; in the file, back to the cursor).
   */
  async complete(params: CompleteParams): Promise<string> {
    const asked = performance.now();
    const reuse = this.options.reuseCompletionPrompt ?? true;
    return this.lock.runTaking<string, KeptPrompt>(COMPLETION, async (kept) => {
      // A completion superseded while it was queued (a newer keystroke cancelled it) is dropped, never run.
      if (params.signal?.aborted) {
        if (kept) this.lock.leave(COMPLETION, kept.value, kept.undo);
        return '';
      }
      const inWorkspace = this.relative(params.path);
      const rel = inWorkspace ?? path.basename(params.path);
      const fileStart = inWorkspace !== undefined && params.beforeCursor !== undefined && (this.options.completionPrompt ?? 'in-file') === 'in-file'
        ? this.context?.fimFileStart(inWorkspace) : undefined;
      const keptWindow = kept && !kept.value.inFile ? kept.value : undefined;
      let plan = fileStart === undefined ? { inFile: false, ...this.windowPrompt(rel, params) } : { inFile: true, ...this.inFilePrompt(rel, params) };
      if (fileStart !== undefined && reuse) {
        // Whichever prompt costs fewer tokens to prefill. The window wins where the cache's copy of the file is far
        // from the editor's: an edit far above the cursor, or the file moved in the layout (a file before it left
        // the budget) until the context has prefilled it at its new place.
        const window = this.windowPrompt(rel, params);
        const windowCost = window.tokens.length - (keptWindow ? commonPrefixLength(keptWindow.tokens, window.tokens) : 0);
        if (windowCost < plan.tokens.length - commonPrefixLength(this.context!.heldFrom(fileStart), plan.tokens)) plan = { inFile: false, ...window };
      }
      const { inFile, tokens: prompt, fileTokens } = plan;
      // What the other kind of completion left is undone: the two build on different bases.
      if (kept && kept.value.inFile !== inFile) await kept.undo();
      const base = inFile ? fileStart! : keptWindow?.base ?? this.engine.length;
      const cached = inFile ? this.context!.heldFrom(base) : keptWindow?.tokens ?? [];
      // At least the prompt's last token is prefilled again: its logits give the first completion token.
      const same = reuse ? Math.min(commonPrefixLength(cached, prompt), prompt.length - 1) : 0;
      // Where cutting there would recompute part of a compressed block, the cut goes to its block's start: no
      // recompute pass of the truncation's own.
      const reused = this.truncationRecomputes(base + same) ? cutWithoutRecompute(this.engine.info.cskv!.window, base + same, base) - base : same;
      let cut = false;
      try {
        if (inFile) await this.context!.cut(base + reused);
        else await this.engine.truncate(base + reused);
        cut = true;
        let firstToken: number | undefined;
        const result = await generate(this.engine, prompt.slice(reused), {
          greedy: true,
          maxNewTokens: this.roomFor(prompt.length - reused, params.maxNewTokens ?? (params.multiline ? 96 : 32)),
          stopTokens: this.stopIds(COMPLETION_STOPS),
          signal: params.signal,
          tokenizer: this.tokenizer,
          // A keystroke's prompt (the edit and FIM's tail, a few dozen tokens) crosses a block boundary more often than
          // not: one pass over the whole history instead of two.
          onePassPrompt: true,
          // One line: done at its end.
          stopWhen: params.multiline ? undefined : (t) => t.includes('\n'),
          onToken: () => {
            firstToken ??= performance.now();
          },
        });
        if (params.signal?.aborted) return '';
        this.reportSpeed('completion', result, asked, firstToken, { promptTokens: prompt.length, prefilledTokens: prompt.length - reused });
        return params.multiline ? result.text : result.text.split('\n')[0]!;
      } finally {
        // What of the prompt is in the cache (all of it, or the chunks a cancelled prefill finished) is kept.
        const held = cut ? Math.max(reused, Math.min(this.engine.length - base, prompt.length)) : 0;
        if (inFile && cut) {
          // The file, cut at the cursor, is the context's own (it prefills the rest once typing pauses); the FIM tail
          // after it is this completion's, undone for anyone else.
          await this.engine.truncate(base + held);
          this.context!.appended(prompt.slice(reused, held));
          const tail = base + Math.min(held, fileTokens);
          this.lock.leave<KeptPrompt>(COMPLETION, { inFile: true }, () => this.context!.cut(tail));
          this.fileCutAtCursor = true;
          this.scheduleSync();
        } else if (!inFile) {
          await this.engine.truncate(base + (reuse ? held : 0));
          if (reuse && held > 0) this.lock.leave<KeptPrompt>(COMPLETION, { inFile: false, base, tokens: prompt.slice(0, held) }, () => this.engine.truncate(base));
        }
      }
    });
  }

  /** Whether cutting the cache at `length` runs a forward pass of the truncation's own (engine.truncationRecomputes). */
  private truncationRecomputes(length: number): boolean {
    const cskv = this.engine.info.cskv;
    if (!cskv) return false;
    return this.engine.truncationRecomputes?.(length) ?? length < compressedLength({ window: cskv.window, compressed: true }, this.engine.length);
  }

  /**
   * The prompt of a completion in the resident file, from its segment's start: the file up to the cursor as the FIM
   * prefix (`fileTokens` of them, the part the context's segment shares), then FIM's tail.
   */
  private inFilePrompt(rel: string, params: CompleteParams): { tokens: number[]; fileTokens: number } {
    const fim = this.format.fim!;
    const file = this.tokenizer.encodeParts([...segmentHead(this.format, rel, true), { literal: params.beforeCursor! }]);
    return { tokens: [...file, ...this.tokenizer.encodeParts([{ template: fim.suffix }, { literal: params.suffix }, { template: fim.middle }])], fileTokens: file.length };
  }

  /** The completion's prompt after the resident context: the file's header, then FIM over the window (or its prefix alone). */
  private windowPrompt(rel: string, params: CompleteParams): { tokens: number[]; fileTokens: number } {
    const { prefix, suffix } = params;
    const format = this.format;
    const parts = format.fim
      ? [...segmentHead(format, rel, true), { literal: prefix }, { template: format.fim.suffix }, { literal: suffix }, { template: format.fim.middle }]
      : [...segmentHead(format, rel, false), { literal: prefix }];
    return { tokens: this.tokenizer.encodeParts(parts), fileTokens: 0 };
  }

  private reportSpeed(kind: GenerationSpeed['kind'], result: GenerateResult, asked: number, firstToken: number | undefined, prompt: Pick<GenerationSpeed, 'promptTokens' | 'prefilledTokens'>): void {
    if (firstToken === undefined) return;
    // The first token comes from the prompt's prefill; the decode steps follow it.
    const steps = result.tokens.length - 1;
    const tokensPerSecond = steps > 0 && result.decodeMs > 0 ? steps / (result.decodeMs / 1000) : 0;
    this.events.onSpeed?.({ kind, tokens: result.tokens.length, firstTokenMs: firstToken - asked, tokensPerSecond, ...prompt });
  }

  /** An editor change: `text` is the new content, undefined when the file was deleted. Debounced. */
  documentChanged(file: string, text: string | undefined): void {
    const rel = this.relative(file);
    if (!this.context || rel === undefined) return;
    if (!this.context.update(rel, text)) return;
    this.scheduleSync();
  }

  /** The context catches up (edits, a file cut by a completion) once the editor has been quiet for the debounce. */
  private scheduleSync(): void {
    clearTimeout(this.editTimer);
    if (this.disposed) return;
    this.editTimer = setTimeout(() => void this.syncContext(), this.options.editDebounceMs ?? EDIT_DEBOUNCE_MS);
  }

  /** Re-reads a file from disk (a watcher saw it created, changed or deleted). Debounced like edits. */
  fileChangedOnDisk(file: string): void {
    const rel = this.relative(file);
    if (!this.context || rel === undefined) return;
    if (!this.context.refreshFromDisk(rel)) return;
    this.scheduleSync();
  }

  /** Applies pending edits now (tests and the CLI do not wait for the debounce). */
  async flushEdits(): Promise<void> {
    clearTimeout(this.editTimer);
    await this.syncContext();
  }

  /**
   * Stops the background update at its next prefill step and keeps what is resident (saved, and used by answers
   * and completions). Rebuild Context resumes (WorkspaceContext.pause says why edits do not). Resolves once the
   * update has stopped; false when there was nothing to stop.
   */
  async pauseSync(): Promise<boolean> {
    if (!this.context?.pause()) return false;
    clearTimeout(this.editTimer);
    await this.syncContext();
    return true;
  }

  /** Scans the workspace again and prefills it from scratch (this also ends a pause: the new context is not paused). */
  async rebuild(): Promise<void> {
    if (!this.context) return;
    await this.context.stop();
    await this.lock.run(() => this.engine.truncate(0));
    this.context = new WorkspaceContext(this.engine, this.tokenizer, this.lock, this.contextOptions);
    await this.context.initialise({ restoreSaved: false });
    await this.syncContext();
  }

  memoryStatus(): MemoryStatus {
    return {
      backend: this.engine.info.backend,
      backendReason: this.backendReason,
      adapter: this.adapter,
      model: this.engine.info.modelDir,
      kv: this.engine.memory(),
      gpu: this.engine.deviceMemory?.(),
      webgpu: this.engine.webgpuMemory?.(),
      residentTokens: this.context?.residentTokens ?? 0,
      residentFiles: this.context?.residentFiles ?? [],
      excludedFiles: this.context?.excludedFiles ?? [],
      paused: this.context?.isPaused ? { pendingFiles: this.context.pendingFiles } : undefined,
    };
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.editTimer);
    await this.context?.stop();
    await this.lock.run(async () => this.context?.save());
    await this.engine.dispose();
  }

  private systemPrompt(activeFile: string | undefined): string {
    const name = path.basename(this.root);
    const where = this.context && this.context.residentTokens > 0
      ? `The files of the repository "${name}" are in your context above, each after its path.`
      : 'No workspace files are in your context.';
    const open = activeFile ? ` The user has ${this.relative(activeFile) ?? activeFile} open.` : '';
    return `You are cskv-code, a coding assistant. ${where}${open} Answer questions about this codebase precisely; name the files you refer to by their paths.`;
  }

  private stopIds(tokens: readonly string[]): number[] {
    // The tokenizer's end ids already take config.json's eos_token_id in (with generation_config.json's).
    const ids = new Set(this.tokenizer.eosTokenIds);
    for (const t of tokens) {
      const id = this.tokenizer.tokenId(t);
      if (id !== undefined) ids.add(id);
    }
    return [...ids];
  }

  /** Tokens left for an answer after the prompt, capped at `wanted`; an error when there is no room at all. */
  private roomFor(promptTokens: number, wanted: number): number {
    const room = this.engine.info.config.maxPositions - this.engine.length - promptTokens;
    if (room < 1) {
      throw new RuntimeError('BAD_ARGUMENT', `the request (${promptTokens} tokens) does not fit after the ${this.engine.length} resident tokens in the model's ${this.engine.info.config.maxPositions}-token context`);
    }
    return Math.min(wanted, room);
  }

  private relative(file: string): string | undefined {
    const rel = path.relative(this.root, path.resolve(this.root, file));
    if (rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
    return rel.split(path.sep).join('/');
  }
}

/** The question after the code it is about, each piece fenced under its path (and lines), as a person would paste it. */
export function withAttachments(question: string, attachments: readonly Attachment[]): string {
  if (attachments.length === 0) return question;
  const pieces = attachments.map((a) => {
    const where = a.lines ? `${a.path}:${a.lines.start}-${a.lines.end}` : a.path;
    // A fence longer than any run of backticks inside, so the code cannot close it.
    const fence = '`'.repeat(Math.max(3, ...[...a.text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
    return `${where}\n${fence}\n${a.text.replace(/\n$/, '')}\n${fence}`;
  });
  return `${pieces.join('\n\n')}\n\n${question}`;
}
