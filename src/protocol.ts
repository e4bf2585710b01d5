// Every custom message between the extension (client) and the sidecar (server), imported by both sides.
// Standard LSP covers the rest: initialize, textDocument/inlineCompletion (LSP 3.18), $/cancelRequest, and
// window/workDoneProgress for long prefills. Each message is one typed object (RequestType / NotificationType of
// vscode-jsonrpc), so both sides get its parameter and result types from the same declaration.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';

/** The widths the compressed branch stores its features in (16: fp16; 8/4/2: quantised). */
export const COMPRESSED_BITS = [16, 8, 4, 2] as const;
export type CompressedBits = (typeof COMPRESSED_BITS)[number];
export function isCompressedBits(value: unknown): value is CompressedBits {
  return COMPRESSED_BITS.includes(value as CompressedBits);
}
/** "16, 8, 4 or 2", for messages about a bad width. */
export const COMPRESSED_BITS_TEXT = `${COMPRESSED_BITS.slice(0, -1).join(', ')} or ${COMPRESSED_BITS[COMPRESSED_BITS.length - 1]}`;

export interface LayerMemory {
  fullBytes: number;
  compressedBytes: number;
}

/** What a KV cache holds, by branch and layer (every engine reports it; the status bar and memory view show it). */
export interface MemoryReport {
  tokens: number;
  /** Tokens held at full precision (per layer) and in the compressed branch. */
  fullTokens: number;
  compressedTokens: number;
  fullBytes: number;
  compressedBytes: number;
  totalBytes: number;
  /** What a plain fp16 cache of the same tokens would hold: tokens × 2 × layers × kvDim × 2 bytes. */
  fp16Bytes: number;
  /** 1 - totalBytes / fp16Bytes. */
  savings: number;
  perLayer: LayerMemory[];
  /** Storage type of the full-precision branch of this backend. */
  fullDtype: 'f32' | 'f16' | 'bf16';
  bits: CompressedBits | null;
  window: number | null;
}

/** Sent as initializationOptions. Paths that decide what code or model is loaded come from user/machine settings only. */
export interface SidecarOptions {
  modelPath: string;
  backend: 'auto' | 'cuda' | 'webgpu' | 'onnx';
  /** A cskv.safetensors file, 'auto' (beside the model if present) or 'off'. */
  cskv: string;
  window?: number | undefined;
  bits?: CompressedBits | undefined;
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

/** The GPU's memory as the driver reports it (usedBytes counts every process on the device), and this model's share. */
export interface GpuMemory {
  totalBytes: number;
  usedBytes: number;
  freeBytes: number;
  /** What the engine holds on the device; absent where the backend cannot tell. */
  engine?: GpuEngineMemory | undefined;
}

export interface GpuEngineMemory {
  weightBytes: number;
  /** The bi-branch cache's pages, reserved at load for the whole context (MemoryReport counts what they hold now). */
  cacheReservedBytes: number;
  /** Activations, logits and the attention's partial results. */
  scratchBytes: number;
}

/**
 * What the WebGPU backend holds on the GPU, counted by the engine (WebGPU reports no usage). Weights and the
 * cache's copies are exact sums of the tensors it handed to the device; scratch is an estimate.
 */
export interface WebGpuMemory {
  /** The layer and head graphs' weights as uploaded, in the engine's weight format. */
  weightBytes: number;
  /** The cache's copies between steps: keys/values of the full-precision window, the compressed features of the
   * window's tokens (waiting for their block to leave), and the compressed branch (f32 rows, or packed codes). */
  fullBytes: number;
  pendingBytes: number;
  compressedBytes: number;
  /** One layer's activations at the largest step so far, estimated from the graph's shapes (the provider's buffer
   * cache may keep more). */
  scratchBytes: number;
}

/** The GPU adapter the WebGPU backend runs on, as Dawn names it, with its memory where the system reports it. */
export interface GpuAdapter {
  /** The driver's description, e.g. "NVIDIA H200" or "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)". */
  name: string;
  /** "nvidia", "amd", "intel", "apple", "mesa" (lavapipe), ... */
  vendor: string;
  /** A software rasteriser (Mesa lavapipe): it computes on the CPU, a correctness path. */
  software: boolean;
  /** Bytes the adapter can use; shared: the system's memory (software adapters). Absent where nothing reports it. */
  memory?: { bytes: number; shared: boolean } | undefined;
}

/** server → client (notification `cskv/status`): what the sidecar is doing, for the status bar. */
export interface StatusParams {
  state: SidecarState;
  message: string;
  progress?: PrefillProgress | undefined;
}
export const StatusNotification = new NotificationType<StatusParams>('cskv/status');

/** client → server (request `cskv/memory`) and server → client (notification `cskv/memoryChanged`). */
export interface MemoryStatus {
  backend: 'onnx' | 'webgpu' | 'cuda';
  /** Why this backend, e.g. "onnx (CPU): CUDA unavailable: libcuda.so.1: cannot open shared object file". */
  backendReason: string;
  model: string;
  kv: MemoryReport;
  /** Absent where the engine does not run on a GPU or the backend cannot report it (WebGPU). */
  gpu?: GpuMemory | undefined;
  /** The WebGPU backend's adapter (backend 'webgpu' only); backendReason says why it was chosen. */
  adapter?: GpuAdapter | undefined;
  /** What the WebGPU backend holds on the GPU (backend 'webgpu' only). */
  webgpu?: WebGpuMemory | undefined;
  residentTokens: number;
  residentFiles: ResidentFile[];
  excludedFiles: ExcludedFile[];
  /** Set while the background update is paused (`cskv/pauseSync`): the files of the layout that are not in the
   * context (edited since, or not reached yet). Answers and completions use what is resident meanwhile. */
  paused?: { pendingFiles: string[] } | undefined;
}
export const MemoryRequest = new RequestType0<MemoryStatus, void>('cskv/memory');
/** The notification carries the new status, so the client need not ask again. */
export type MemoryChangedParams = MemoryStatus;
export const MemoryChangedNotification = new NotificationType<MemoryChangedParams>('cskv/memoryChanged');

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
  /** What the user put beside the question: a selection, files mentioned with `@` (left out of the budget or not). */
  attachments?: Attachment[] | undefined;
  /** Most tokens of the answer (cskv.chat.maxAnswerTokens; the sidecar's default when absent). */
  maxAnswerTokens?: number | undefined;
}

/** Code the question is about, sent with it as literal text. */
export interface Attachment {
  /** Workspace-relative path. */
  path: string;
  text: string;
  /** A selection's lines (1-based, inclusive); absent for a whole file. */
  lines?: { start: number; end: number } | undefined;
}
/** Why generation ended: an end token, a stop on the text (a finished line), the length limit, or a cancel. */
export type StopReason = 'stop-token' | 'stop-text' | 'max-tokens' | 'cancelled';

export interface AskResult {
  text: string;
  stopReason: StopReason;
}
export const AskRequest = new RequestType<AskParams, AskResult, void>('cskv/ask');

export interface AnswerChunkParams {
  id: string;
  text: string;
}
export const AnswerChunkNotification = new NotificationType<AnswerChunkParams>('cskv/answerChunk');

/** client → server: rebuild the workspace context from scratch. Resolves once the rebuild has started over; progress
 * follows as `cskv/status` notifications. */
export const RebuildContextRequest = new RequestType0<void, void>('cskv/rebuildContext');

/** client → server (request `cskv/pauseSync`): stop the background update at the next prefill step and stay
 * paused, keeping what is resident; Rebuild Context resumes. Resolves once it has stopped, with false when there
 * was nothing to stop (the context was already in line with the workspace). */
export const PauseSyncRequest = new RequestType0<boolean, void>('cskv/pauseSync');

/** client → server (request `cskv/health`): answered at once whatever the sidecar is doing, so a sidecar that stops
 * answering it is hung, not busy (the model's work yields between steps). */
export interface HealthResult {
  state: SidecarState;
}
export const HealthRequest = new RequestType0<HealthResult, void>('cskv/health');

/** Error codes of failed custom requests (ResponseError.code), beside the JSON-RPC ones. */
export const SidecarErrorCodes = {
  /** The model could not be loaded; the message says why (the same text as the `failed` status). */
  ModelUnavailable: -32001,
  /** A runtime error while serving the request (RuntimeError.code is in `data`). */
  RuntimeFailed: -32002,
} as const;

// ---- Generation speed (issue 14): the status bar tooltip and the memory view show it. ----

export interface GenerationSpeed {
  kind: 'answer' | 'completion';
  /** Tokens generated. */
  tokens: number;
  /** From the request reaching the sidecar (waiting for the engine included) to the first generated token. */
  firstTokenMs: number;
  /** Decode speed after the first token; 0 when only one token was generated. */
  tokensPerSecond: number;
  /** Tokens of the request's prompt, and how many of them it prefilled (a completion reuses the previous one's). */
  promptTokens: number;
  prefilledTokens: number;
}
/** server → client (notification `cskv/speed`): after each answer and each completion that generated a token. */
export type SpeedParams = GenerationSpeed;
export const SpeedNotification = 'cskv/speed';
