// The messages between the extension and its two webviews (media/chat.js, media/memory.js), declared once: the
// extension's views post and receive these types, and the webview scripts take them through JSDoc
// (`import('../src/extension/webviewMessages')`). Types only: no vscode import, so the webviews' type check sees them.
import type { ChatTurn } from '../protocol';
import type { FileReference } from './answerLinks';
import type { StatusView } from './format';

export interface StoredTurn extends ChatTurn {
  /** Set on answers that did not finish normally: why. */
  note?: string | undefined;
  noteKind?: NoteKind | undefined;
  /** Answers: the model that gave it (its folder or file name). */
  model?: string | undefined;
  /** Questions: what was attached (a selection, files mentioned with @), shown as chips. */
  attached?: AttachedChip[] | undefined;
}

/** An attachment as a chip: `src/geometry.py:3-9`, or a whole file. */
export interface AttachedChip {
  path: string;
  lines?: { start: number; end: number } | undefined;
}

/** What the answer will see, shown as chips above the question box. */
export interface ChatContext {
  /** The files in the model's context and those left out of it (the lists on click); absent before the first index. */
  workspace?: { resident: number; leftOut: number } | undefined;
  /** The file open in the editor, and whether the model has it (outside the budget: a warning). */
  active?: { path: string; resident: boolean } | undefined;
  /** The selection the user asked about, until it is sent or removed. */
  selection?: AttachedChip | undefined;
  /** Workspace files that `@` can mention (resident or left out of the budget). */
  files: string[];
}

/** `stopped`: the user stopped it; `info`: cut off at the length limit; `error`: the sidecar failed. */
export type NoteKind = 'stopped' | 'info' | 'error';

/** Extension → webview. */
export type ToWebview =
  | { type: 'init'; history: StoredTurn[]; view: ViewSummary; context: ChatContext }
  | { type: 'view'; view: ViewSummary }
  | { type: 'context'; context: ChatContext }
  | { type: 'answerStart'; id: string; question: string; attached: AttachedChip[]; model: string }
  | { type: 'answerChunk'; id: string; text: string }
  | { type: 'answerEnd'; id: string; text: string; note?: string | undefined; noteKind?: NoteKind | undefined }
  /** The conversation was deleted; `undo` while it can be brought back. */
  | { type: 'cleared'; undo: boolean }
  | { type: 'prefill'; question: string; send: boolean };

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  /** `selection`: with the selection chip shown (a chip the user removed is not sent). */
  | { type: 'ask'; question: string; selection: boolean }
  | { type: 'stop' }
  | { type: 'undoClear' }
  | { type: 'dropSelection' }
  /** The workspace chip was clicked: the lists of resident and left-out files. */
  | { type: 'showContext' }
  | { type: 'copy'; text: string }
  | { type: 'insert'; text: string }
  | { type: 'openFile'; ref: FileReference }
  | { type: 'command'; command: 'cskv.selectModel' | 'cskv.restartSidecar' | 'cskv.showLog' | 'workbench.trust.manage' | 'cskv.newConversation' | 'cskv.stopUpdating' | 'cskv.rebuildContext' };

/** What the view shows above the conversation. */
export interface ViewSummary {
  state: StatusView['state'];
  message: string;
  trusted: boolean;
  busy: boolean;
  /** An update after an edit (a quiet line, not the indexing banner). */
  update: boolean;
  /** That update was stopped (cskv: Stop Updating): the quiet line says what is missing and how to resume. */
  paused: boolean;
}

// The memory view.

export interface MemorySample {
  /** ms since the epoch */
  t: number;
  totalBytes: number;
  fullBytes: number;
  compressedBytes: number;
  fp16Bytes: number;
  tokens: number;
  gpuUsedBytes?: number | undefined;
}

/** Extension → webview (media/memory.js). */
export type ToMemoryWebview = { type: 'update'; view: StatusView; samples: MemorySample[] };
/** Webview → extension. */
export type FromMemoryWebview =
  | { type: 'ready' }
  | { type: 'command'; command: 'cskv.selectModel' | 'cskv.restartSidecar' | 'cskv.showLog' | 'cskv.rebuildContext' };
