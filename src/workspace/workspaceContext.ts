// The whole workspace, resident in the engine's cache: one token sequence of file segments, prefilled once and
// kept. The context holds a target layout and brings the cache in line with it: it keeps the longest unchanged
// prefix of segments, truncates the rest and prefills the tail; of the first segment that changed it keeps the tokens
// before the change (to a step boundary). Edits move a file to the end, so an edit to a rarely-touched file early in
// the layout is the only kind that costs a long re-prefill, and typing in the last file re-prefills it from the edit on.
//
// The last file is laid out for fill-in-the-middle (layout.ts), and a completion in it rewrites the cache from inside
// that file (cut at the cursor, then the FIM tail): the context mirrors every token the cache holds (`held`), whoever
// put it there, and re-prefills the file's rest when it next syncs.
//
// The engine is shared with requests through a Mutex held one prefill step at a time, so a question can be
// answered over what is resident so far while a long prefill is still running.
import * as path from 'node:path';
import type { ExcludedFile, PrefillProgress, ResidentFile } from '../protocol';
import type { Engine } from '../runtime/engine';
import type { ModelTokenizer } from '../runtime/tokenizer';
import { type RepoFormat, type Segment, fileSegment, headerSegment, repoFormat } from './layout';
import type { Mutex } from './mutex';
import { snapshotHistory } from '../runtime/cache/cacheSnapshot';
import { commonPrefixLength } from './tokenPrefix';
import { type ContextKey, type SavedSegment, contextKey, loadContext, saveContext } from './persistence';
import { bm25Scores } from './relevance';
import { DEFAULT_MAX_FILE_BYTES, PathFilter, readWorkspaceFile, scanWorkspace } from './scan';

export interface WorkspaceContextOptions {
  root: string;
  /** Most tokens the resident context may take. */
  budgetTokens: number;
  excludes?: readonly string[];
  maxFileBytes?: number;
  /** Where to save the context between runs; none when undefined. */
  storageFile?: string | undefined;
  /** Files always kept in (when they fit) and placed last: the open editors. */
  pinned?: readonly string[];
  /** Text that ranks files by relevance when the workspace exceeds the budget (a question, the open files). */
  focus?: string;
  /** Tokens per prefill step: the longest a request waits behind the background prefill. */
  stepTokens?: number;
  onProgress?: (progress: PrefillProgress) => void;
  /** The resident set, the cache or the layout changed. */
  onChange?: () => void;
  log?: (message: string) => void;
}

interface KnownFile {
  text: string;
  mtimeMs: number;
  /** Its tokens, made when first needed (segmentOf), plain and laid out for FIM. */
  segment?: Segment;
  fimSegment?: Segment;
}

/**
 * Tokens per prefill step (the default of `stepTokens`): a keystroke's completion waits behind at most the step in
 * flight, and during a typing pause that step is the re-prefill of the file typed in, deep in the context, where 256
 * tokens (two of the CPU engine's 128-token forward passes) took seconds. 64 keeps that wait to one short pass.
 */
export const DEFAULT_STEP_TOKENS = 64;
/**
 * A file whose estimated tokens (its characters over the workspace's characters per token so far) exceed what is
 * left of the budget by this factor is taken not to fit without being tokenised.
 */
const ESTIMATE_MARGIN = 1.5;

export class WorkspaceContext {
  private readonly format: RepoFormat;
  private readonly filter: PathFilter;
  private readonly files = new Map<string, KnownFile>();
  private header: Segment;
  private target: Segment[] = [];
  /** Segments fully in the cache, in order. Always a prefix of the cache's tokens. */
  private resident: SavedSegment[] = [];
  /** The token ids the cache holds between this context's steps (a completion that rewrites it says so: cut(), appended()). */
  private held: number[] = [];
  /**
   * How many of the cache's first tokens this context's own steps computed (a restored snapshot counts: it was saved
   * synced). Tokens a completion prefilled were computed in other chunks than a fresh prefill of the layout cuts,
   * so a re-prefill keeps none of them, even where they equal the layout's.
   */
  private exact = 0;
  private overBudget = new Set<string>();
  private scanExcluded: ExcludedFile[] = [];
  private generation = 0;
  /** Counts update()s: typing, which stops the re-prefill of the file typed in (syncLoop). */
  private edits = 0;
  private syncing: Promise<void> | undefined;
  private stopped = false;
  /** Paused by the user (pause()): no prefill until a new context is built (Rebuild Context); see pause(). */
  private paused = false;
  /** The resident segments as last saved: the same context is not written again (an edit while paused changes none). */
  private savedAs: string | undefined;
  private readonly key: ContextKey;

  constructor(private readonly engine: Engine, private readonly tokenizer: ModelTokenizer, private readonly lock: Mutex, private readonly options: WorkspaceContextOptions) {
    this.format = repoFormat(tokenizer);
    this.filter = new PathFilter(options.root, options.excludes);
    this.header = headerSegment(tokenizer, this.format, path.basename(path.resolve(options.root)));
    this.key = contextKey(options.root, engine.info, engine.memory().fullDtype);
  }

  /** Scans the workspace, lays it out, and takes back a saved cache that still matches. Does not prefill. */
  async initialise({ restoreSaved = true } = {}): Promise<void> {
    const scan = await scanWorkspace(this.options.root, { excludes: this.options.excludes, maxFileBytes: this.options.maxFileBytes });
    for (const note of scan.notes) this.options.log?.(`scan: ${note}`);
    this.scanExcluded = scan.excluded;
    for (const f of scan.files) this.files.set(f.path, { text: f.text, mtimeMs: f.mtimeMs });
    const saved = restoreSaved ? this.restoreSaved() : [];
    this.target = this.withFimLast(this.layout(saved));
    this.generation++;
  }

  /**
   * Brings the cache in line with the layout, in the background; resolves when it is, when the context stops, or when
   * an edit comes while it prefills the layout's last file (typing resumed: syncLoop).
   */
  sync(): Promise<void> {
    this.syncing ??= this.syncLoop().finally(() => {
      this.syncing = undefined;
    });
    return this.syncing;
  }

  /** A file was saved, created (text given) or deleted (undefined). Returns false when the path is not ours. */
  update(relPath: string, text: string | undefined): boolean {
    if (relPath.startsWith('..') || path.isAbsolute(relPath)) return false;
    const old = this.files.get(relPath);
    if (text === undefined) {
      if (!old) return false;
      this.files.delete(relPath);
    } else {
      if (this.filter.reason(relPath)) return false;
      if (old && old.text === text) return false;
      if (Buffer.byteLength(text) > (this.options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES)) return false;
      this.files.set(relPath, { text, mtimeMs: Date.now() });
    }
    // The file leaves its place; a new version goes to the end, where the next edit costs least.
    this.target = this.target.filter((s) => s.path !== relPath);
    if (this.files.has(relPath)) {
      // Last, so laid out for FIM (withFimLast): the plain variant is never tokenised for it.
      this.target.push(this.segmentOf(relPath, { fim: true }));
      this.overBudget.delete(relPath);
      this.fitBudget(relPath);
    }
    this.target = this.withFimLast(this.target);
    this.generation++;
    this.edits++;
    this.options.onChange?.();
    return true;
  }

  /** Re-reads a file from disk (after a save, create or rename seen by a watcher). */
  refreshFromDisk(relPath: string): boolean {
    const read = readWorkspaceFile(path.join(this.options.root, relPath), this.options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, this.options.root);
    return this.update(relPath, 'reason' in read ? undefined : read.text);
  }

  /** Tokens of the segments fully in the cache. */
  get residentTokens(): number {
    return this.resident.reduce((a, s) => a + s.tokens, 0);
  }

  /** Tokens the whole layout takes. */
  get targetTokens(): number {
    return this.target.reduce((a, s) => a + s.tokens.length, 0);
  }

  get residentFiles(): ResidentFile[] {
    return this.resident.filter((s) => s.path !== '').map((s) => ({ path: s.path, tokens: s.tokens }));
  }

  get excludedFiles(): ExcludedFile[] {
    return [...this.scanExcluded, ...[...this.overBudget].map((p) => ({ path: p, reason: 'over-budget' as const }))];
  }

  /** The layout's segments, in order (for tests and the UI). */
  get layoutPaths(): string[] {
    return this.target.map((s) => s.path);
  }

  get isSynced(): boolean {
    return this.resident.length === this.target.length && this.resident.every((s, i) => s.hash === this.target[i]!.hash && s.path === this.target[i]!.path) &&
      this.engine.length === this.residentTokens;
  }

  /** Whether the background update is paused (pause()). */
  get isPaused(): boolean {
    return this.paused;
  }

  /** Files of the layout not in the cache as laid out: edited since they were prefilled, or not reached yet. */
  get pendingFiles(): string[] {
    const resident = new Set(this.resident.map((s) => `${s.path}\0${s.hash}`));
    return this.target.filter((s) => s.path !== '' && !resident.has(`${s.path}\0${s.hash}`)).map((s) => s.path);
  }

  /**
   * Stops the background sync at its next prefill step and keeps it stopped; what is resident stays in the cache
   * and serves answers and completions. Edits go on updating the layout (their files are reported as pending) but
   * do not resume: every keystroke is an edit, so a stop that the next keystroke undid would last one debounce.
   * Resuming is Rebuild Context, which builds a new context. False when there is nothing to stop.
   */
  pause(): boolean {
    if (this.paused || this.isSynced) return false;
    this.paused = true;
    this.options.onChange?.();
    return true;
  }

  /** Saves the resident context when the cache holds exactly the layout, or exactly what is resident while paused. */
  async save(): Promise<void> {
    const file = this.options.storageFile;
    const consistent = this.isSynced || (this.paused && this.engine.length === this.residentTokens);
    const fingerprint = this.resident.map((s) => `${s.path}\0${s.hash}`).join('\n');
    if (!file || !consistent || fingerprint === this.savedAs) return;
    try {
      saveContext(file, { key: this.key, segments: this.resident, snapshot: await this.engine.snapshot() });
      this.savedAs = fingerprint;
    } catch (err) {
      // The answer stands; only the next start is slower.
      this.options.log?.(`could not save the workspace context to ${file}: ${(err as Error).message}`);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.syncing;
  }

  /**
   * Where a completion in `relPath` can continue the resident file: the cache position its segment starts at, when
   * it is the layout's last file, laid out for FIM, everything before it is in the cache, and the context is not
   * paused (a pause keeps what is resident whole). Undefined otherwise: the completion then carries a window.
   */
  fimFileStart(relPath: string): number | undefined {
    const last = this.target.length - 1;
    if (this.paused || last < 1 || this.target[last]!.path !== relPath || !this.target[last]!.fim || this.resident.length < last) return undefined;
    let start = 0;
    for (let i = 0; i < last; i++) {
      if (this.resident[i]!.path !== this.target[i]!.path || this.resident[i]!.hash !== this.target[i]!.hash) return undefined;
      start += this.resident[i]!.tokens;
    }
    return start <= this.held.length ? start : undefined;
  }

  /** The token ids the cache holds from `start` on. */
  heldFrom(start: number): readonly number[] {
    return this.held.slice(start);
  }

  /**
   * Cuts the cache to `length` for a request that rewrites it from there (a completion inside the last file; called
   * with the lock held). Segments reaching past the cut are no longer resident, and a sync under way stops at its
   * next step and starts over from what the cache now holds.
   */
  async cut(length: number): Promise<void> {
    await this.engine.truncate(length);
    this.held.length = length;
    this.exact = Math.min(this.exact, length);
    let end = 0;
    let whole = 0;
    while (whole < this.resident.length && end + this.resident[whole]!.tokens <= length) end += this.resident[whole++]!.tokens;
    this.resident.length = whole;
    this.generation++;
  }

  /** The request that cut the cache appended `tokens` to it (with the lock held): the context's mirror follows. */
  appended(tokens: readonly number[]): void {
    for (const id of tokens) this.held.push(id);
  }

  private restoreSaved(): SavedSegment[] {
    const file = this.options.storageFile;
    if (!file) return [];
    const loaded = loadContext(file, this.key);
    const discard = (reason: string): SavedSegment[] => {
      this.options.log?.(`discarded the saved workspace context ${file}: ${reason}`);
      return [];
    };
    if (loaded.status === 'discarded') return discard(loaded.reason);
    if (loaded.status !== 'loaded') return [];
    let inconsistency: string | undefined;
    let history: number[] = [];
    try {
      history = snapshotHistory(loaded.saved.snapshot);
      inconsistency = this.inconsistency(loaded.saved.segments, history);
    } catch (err) {
      inconsistency = (err as Error).message;
    }
    if (inconsistency) return discard(inconsistency);
    try {
      this.engine.restore(loaded.saved.snapshot);
    } catch (err) {
      return discard((err as Error).message);
    }
    this.held = history;
    this.exact = history.length;
    this.resident = loaded.saved.segments;
    return loaded.saved.segments;
  }

  /**
   * Why a saved segment table and its cache's token ids do not belong together, if they do not: the table must
   * cover the ids exactly, every id must be in the model's vocabulary, and each segment whose file is unchanged
   * (same hash) must hold exactly that file's tokens, so swapped or shifted entries are caught.
   */
  private inconsistency(segments: readonly SavedSegment[], history: readonly number[]): string | undefined {
    const total = segments.reduce((a, s) => a + s.tokens, 0);
    if (total !== history.length) return `its segment table (${total} tokens) does not match its cache (${history.length} tokens)`;
    const vocab = this.engine.info.config.vocabSize;
    const outside = history.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
    if (outside !== undefined) return `its cache holds token id ${outside}, outside the model's vocabulary of ${vocab}`;
    let at = 0;
    for (const saved of segments) {
      const current = saved.path === '' ? this.header : this.files.has(saved.path) ? this.savedVariant(saved) : undefined;
      if (current && current.hash === saved.hash &&
        (current.tokens.length !== saved.tokens || current.tokens.some((id, i) => history[at + i] !== id))) {
        return `the cache does not hold the tokens of ${saved.path === '' ? 'the repository header' : saved.path} where its segment table puts them`;
      }
      at += saved.tokens;
    }
    return undefined;
  }

  /**
   * The layout: the repo header, then files within the budget, rarely edited first (oldest modification time),
   * open files last. Files of a saved context keep their saved order, so a restart re-prefills only what changed.
   */
  private layout(saved: SavedSegment[]): Segment[] {
    const chosen = this.chooseWithinBudget();
    const savedOrder = new Map(saved.map((s, i) => [s.path, i]));
    const pinned = new Set(this.options.pinned ?? []);
    const rank = (p: string): [number, number] => {
      const f = this.files.get(p)!;
      const unchanged = savedOrder.has(p) && saved[savedOrder.get(p)!]!.hash === this.savedVariant(saved[savedOrder.get(p)!]!).hash;
      if (unchanged) return [0, savedOrder.get(p)!];
      return [pinned.has(p) ? 2 : 1, f.mtimeMs];
    };
    chosen.sort((a, b) => {
      const [ga, ka] = rank(a), [gb, kb] = rank(b);
      return ga - gb || ka - kb || (a < b ? -1 : 1);
    });
    return [this.header, ...chosen.map((p) => this.segmentOf(p))];
  }

  /** A file's segment, tokenised on first use: a large workspace is tokenised only as far as the budget reaches. */
  private segmentOf(p: string, { fim = false } = {}): Segment {
    const f = this.files.get(p)!;
    if (fim && this.format.fim) return (f.fimSegment ??= fileSegment(this.tokenizer, this.format, p, f.text, { fim: true }));
    f.segment ??= fileSegment(this.tokenizer, this.format, p, f.text);
    return f.segment;
  }

  /** The variant of a file's current segment a saved entry would be if the file is unchanged (the last was for FIM). */
  private savedVariant(saved: SavedSegment): Segment {
    const fim = this.segmentOf(saved.path, { fim: true });
    return fim.hash === saved.hash ? fim : this.segmentOf(saved.path);
  }

  /**
   * The layout with its last file laid out for FIM and every other one plain. The file typed in is the last (an edit
   * moves it there), and when another file becomes last by an edit, everything after that file's old place, the old
   * last file included, is prefilled again anyway: the marker moves at no extra cost. (When the last file is deleted
   * or left out, or a restart finds other files changed, the old last file is prefilled again once for it.)
   */
  private withFimLast(target: Segment[]): Segment[] {
    return target.map((s, i) => (s.path === '' ? s : this.segmentOf(s.path, { fim: i === target.length - 1 })));
  }

  /** Files that fit the budget: open files first, then by relevance to the focus, then the most recent. */
  private chooseWithinBudget(): string[] {
    const budget = this.options.budgetTokens - this.header.tokens.length;
    const all = [...this.files.keys()];
    const pinned = new Set(this.options.pinned ?? []);
    const scores = this.options.focus ? bm25Scores(all.map((p) => `${p}\n${this.files.get(p)!.text}`), this.options.focus) : all.map(() => 0);
    const order = all.map((p, i) => ({ p, pinned: pinned.has(p), score: scores[i]!, mtime: this.files.get(p)!.mtimeMs }))
      .sort((a, b) => Number(b.pinned) - Number(a.pinned) || b.score - a.score || b.mtime - a.mtime);
    this.overBudget = new Set();
    const chosen: string[] = [];
    let used = 0;
    let chars = 0;
    for (const { p } of order) {
      const left = budget - used;
      const text = this.files.get(p)!.text;
      const charsPerToken = used > 0 ? chars / used : 3.5; // code averages 3-4
      const fits = text.length / charsPerToken <= left * ESTIMATE_MARGIN && this.segmentOf(p).tokens.length <= left;
      if (fits) {
        chars += text.length;
        chosen.push(p);
        used += this.segmentOf(p).tokens.length;
      } else {
        this.overBudget.add(p);
      }
    }
    return chosen;
  }

  /** After an update grew the layout past the budget: drop files from the end (the cheapest to lose), never `keep`. */
  private fitBudget(keep: string): void {
    const pinned = new Set(this.options.pinned ?? []);
    const leaveOut = (i: number): void => {
      this.overBudget.add(this.target[i]!.path);
      this.target.splice(i, 1);
    };
    // A file larger than the whole budget by itself is left out and the rest stays: a request on it still carries
    // the text around its cursor.
    const kept = this.target.findIndex((s) => s.path === keep);
    if (kept > 0 && this.header.tokens.length + this.target[kept]!.tokens.length > this.options.budgetTokens) {
      leaveOut(kept);
      return;
    }
    let total = this.targetTokens;
    // Other files make room, open (pinned) ones last.
    for (const spare of [(p: string) => p !== keep && !pinned.has(p), (p: string) => p !== keep]) {
      for (let i = this.target.length - 1; i > 0 && total > this.options.budgetTokens; i--) {
        if (!spare(this.target[i]!.path)) continue;
        total -= this.target[i]!.tokens.length;
        leaveOut(i);
      }
    }
  }

  private async syncLoop(): Promise<void> {
    const step = this.stepTokens();
    const started = performance.now();
    let prefilled = 0;
    /** `edits` when this loop last set out to prefill the layout's last file; undefined while it prefills another. */
    let typingFrom: number | undefined;
    while (!this.stopped && !this.paused) {
      // The layout's last file is the one typed in: an edit while it is prefilled (a pause's re-prefill) means typing
      // went on, and the keystroke's completion cuts the file at its cursor again, so the rest waits for the next
      // pause (the session's debounce syncs again) instead of taking the engine between keystrokes.
      if (typingFrom !== undefined && typingFrom !== this.edits) break;
      const generation = this.generation;
      let keep = 0;
      while (keep < this.resident.length && keep < this.target.length &&
        this.resident[keep]!.hash === this.target[keep]!.hash && this.resident[keep]!.path === this.target[keep]!.path) keep++;
      const keepTokens = this.resident.slice(0, keep).reduce((a, s) => a + s.tokens, 0);
      // The cache may already hold the next segment's first tokens (an edited file's previous version up to the edit,
      // or a prefill the edit interrupted). They are kept up to a step boundary, where a fresh prefill of the layout
      // starts a step too, so the cache stays exactly what a fresh prefill would make.
      const next = this.target[keep];
      typingFrom = keep === this.target.length - 1 ? this.edits : undefined;
      // Only tokens this context's own steps computed count (`exact`).
      const same = next ? commonPrefixLength(this.held, next.tokens, keepTokens) : 0;
      const reused = Math.max(0, Math.floor(Math.min(keepTokens + same, this.exact) / step) * step - keepTokens);
      // A completion leaves its FIM tail until the lock is taken, and may have cut the cache meanwhile (cut() counts as
      // a change): what was read above then no longer holds, so start over.
      const cut = await this.lock.run(async () => {
        if (generation !== this.generation) return undefined;
        this.exact = Math.min(this.exact, keepTokens + reused);
        if (this.engine.length === keepTokens + reused) return false;
        await this.engine.truncate(keepTokens + reused);
        this.held.length = keepTokens + reused;
        return true;
      });
      if (cut === undefined) continue;
      if (cut || keep < this.resident.length) {
        this.resident = this.resident.slice(0, keep);
        this.options.onChange?.();
      }
      if (keep === this.target.length) {
        this.reportProgress(prefilled, started, keepTokens);
        return;
      }
      const segment = next!;
      const start = keepTokens;
      let done = reused;
      while (done < segment.tokens.length && generation === this.generation && !this.stopped && !this.paused) {
        // Steps end on an absolute grid, so a fresh prefill of the same layout cuts chunks at the same places.
        const end = Math.min(segment.tokens.length, (Math.floor((start + done) / step) + 1) * step - start);
        const tokens = segment.tokens.slice(done, end);
        const appended = await this.lock.run(async () => {
          // A completion cut the cache since the last step (cut()): start over from what it holds.
          if (generation !== this.generation) return false;
          await this.engine.prefill(tokens, { logits: 0 });
          this.held.push(...tokens);
          this.exact = this.held.length;
          return true;
        });
        if (!appended) break;
        prefilled += end - done;
        done = end;
        this.reportProgress(prefilled, started, start + done);
      }
      if (done === segment.tokens.length) {
        this.resident.push({ path: segment.path, hash: segment.hash, tokens: segment.tokens.length });
        this.options.onChange?.();
      }
    }
    // A segment cut short by the pause leaves the cache: what stays is exactly the resident segments, which
    // answers then see whole and save() can save.
    if (this.paused && !this.stopped) {
      await this.lock.run(async () => {
        if (this.engine.length !== this.residentTokens) await this.engine.truncate(this.residentTokens);
        this.held.length = this.residentTokens;
      });
      this.options.onChange?.();
    }
  }

  private stepTokens(): number {
    const window = this.engine.info.cskv?.window ?? 1;
    const step = this.options.stepTokens ?? DEFAULT_STEP_TOKENS;
    return Math.max(window, Math.floor(step / window) * window);
  }

  private reportProgress(prefilled: number, started: number, position: number): void {
    const total = this.targetTokens;
    const done = Math.min(position, total);
    const seconds = (performance.now() - started) / 1000;
    const tokensPerSecond = seconds > 0 ? prefilled / seconds : 0;
    this.options.onProgress?.({ done, total, tokensPerSecond, etaSeconds: tokensPerSecond > 0 ? (total - done) / tokensPerSecond : 0 });
  }
}
