// Every custom message between the extension (client) and the sidecar (server), imported by both sides.
// Standard LSP covers the rest: initialize, textDocument/inlineCompletion (LSP 3.18), $/cancelRequest, and
// window/workDoneProgress for long prefills.
import type { MemoryReport } from './runtime/cache/biBranchCache';

/** Sent as initializationOptions. Paths that decide what code or model is loaded come from user/machine settings only. */
export interface SidecarOptions {
  modelPath: string;
  backend: 'auto' | 'cuda' | 'webgpu' | 'onnx';
  /** A cskv.safetensors file, 'auto' (beside the model if present) or 'off'. */
  cskv: string;
  window?: number | undefined;
  bits?: 16 | 8 | 4 | 2 | undefined;
  /** Most tokens of workspace context to keep resident. */
  contextTokenBudget: number;
  /** The extension's storage folder for saved caches. */
  storagePath: string;
  /** False in an untrusted workspace: the sidecar then reads no workspace file into the model. */
  workspaceTrusted: boolean;
  /** Glob patterns from files.exclude / search.exclude, in addition to .gitignore. */
  excludes: string[];
  /** The CUDA addon (.node) to load for backend cuda; from user/machine settings only. Unused by the onnx backend. */
  nativeLibrary?: string | undefined;
}

export type SidecarState = 'starting' | 'loading-model' | 'indexing' | 'ready' | 'failed' | 'stopped';

export interface PrefillProgress {
  done: number;
  total: number;
  tokensPerSecond: number;
  etaSeconds: number;
}

export interface ResidentFile {
  path: string;
  tokens: number;
}

export interface ExcludedFile {
  path: string;
  reason: 'ignored' | 'binary' | 'too-large' | 'generated' | 'over-budget' | 'unreadable';
}

export interface GpuMemory {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
}

/** server → client (notification `cskv/status`): what the sidecar is doing, for the status bar. */
export interface StatusParams {
  state: SidecarState;
  message: string;
  progress?: PrefillProgress | undefined;
}
export const StatusNotification = 'cskv/status';

/** client → server (request `cskv/memory`) and server → client (notification `cskv/memoryChanged`). */
export interface MemoryStatus {
  backend: 'onnx' | 'webgpu' | 'cuda';
  /** Why this backend, e.g. "onnx (CPU): CUDA unavailable: libcuda.so.1: cannot open shared object file". */
  backendReason: string;
  model: string;
  kv: MemoryReport;
  gpu?: GpuMemory | undefined;
  residentTokens: number;
  residentFiles: ResidentFile[];
  excludedFiles: ExcludedFile[];
}
export const MemoryRequest = 'cskv/memory';
/** The notification carries the new status, so the client need not ask again. */
export type MemoryChangedParams = MemoryStatus;
export const MemoryChangedNotification = 'cskv/memoryChanged';

export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/** client → server (request `cskv/ask`): a question about the workspace. The answer streams as `cskv/answerChunk`
 * notifications carrying the same id; the request resolves with the whole answer. Cancel with $/cancelRequest. */
export interface AskParams {
  id: string;
  question: string;
  history: ChatTurn[];
  /** The file open in the editor, if any, so the answer can refer to it. */
  activeFile?: string | undefined;
}
export interface AskResult {
  text: string;
  stopReason: 'stop-token' | 'max-tokens' | 'cancelled';
}
export const AskRequest = 'cskv/ask';

export interface AnswerChunkParams {
  id: string;
  text: string;
}
export const AnswerChunkNotification = 'cskv/answerChunk';

/** client → server: rebuild the workspace context from scratch. Resolves once the rebuild has started over; progress
 * follows as `cskv/status` notifications. */
export const RebuildContextRequest = 'cskv/rebuildContext';

/** Error codes of failed custom requests (ResponseError.code), beside the JSON-RPC ones. */
export const SidecarErrorCodes = {
  /** The model could not be loaded; the message says why (the same text as the `failed` status). */
  ModelUnavailable: -32001,
  /** A runtime error while serving the request (RuntimeError.code is in `data`). */
  RuntimeFailed: -32002,
} as const;
