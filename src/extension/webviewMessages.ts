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
}

/** `stopped`: the user stopped it; `info`: cut off at the length limit; `error`: the sidecar failed. */
export type NoteKind = 'stopped' | 'info' | 'error';

/** Extension → webview. */
export type ToWebview =
  | { type: 'init'; history: StoredTurn[]; view: ViewSummary }
  | { type: 'view'; view: ViewSummary }
  | { type: 'answerStart'; id: string; question: string }
  | { type: 'answerChunk'; id: string; text: string }
  | { type: 'answerEnd'; id: string; text: string; note?: string | undefined; noteKind?: NoteKind | undefined }
  | { type: 'cleared' }
  | { type: 'prefill'; question: string; send: boolean };

/** Webview → extension. */
export type FromWebview =
  | { type: 'ready' }
  | { type: 'ask'; question: string }
  | { type: 'stop' }
  | { type: 'clear' }
  | { type: 'copy'; text: string }
  | { type: 'insert'; text: string }
  | { type: 'openFile'; ref: FileReference }
  | { type: 'command'; command: 'cskv.selectModel' | 'cskv.restartSidecar' | 'cskv.showLog' | 'workbench.trust.manage' };

/** What the view shows above the conversation. */
export interface ViewSummary {
  state: StatusView['state'];
  message: string;
  trusted: boolean;
  busy: boolean;
  /** An update after an edit (a quiet line, not the indexing banner). */
  update: boolean;
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
