// Typed errors that cross every boundary of the runtime (CLI, sidecar, native addon) with a stable code,
// so callers can act on the kind of failure rather than on message text.
import type { PullErrorKind } from '../shared/pullEvents';

export type RuntimeErrorCode =
  | 'MODEL_FORMAT'     // a model, tokenizer or cskv file is missing, malformed or inconsistent
  | 'UNSUPPORTED'      // well-formed input that this runtime does not implement
  | 'BAD_ARGUMENT'     // a caller passed a value out of range
  | 'CANCELLED'        // generation stopped because the caller asked
  | 'BACKEND'          // the execution backend (onnxruntime, CUDA) failed or cannot run here
  | 'CUDA'             // a CUDA call or kernel failed; the message names the call and the operation
  | 'OUT_OF_MEMORY'    // a device allocation failed: the caller can shrink the context and retry
  | 'DOWNLOAD';        // `pull` could not fetch a model; the kind says why (offline, gated, checksum, ...)

export class RuntimeError extends Error {
  constructor(readonly code: RuntimeErrorCode, message: string) {
    super(message);
    this.name = 'RuntimeError';
  }
}

/** A problem with a file the user supplied; the message always starts with the file's path. */
export class ModelFormatError extends RuntimeError {
  constructor(readonly file: string, what: string) {
    super('MODEL_FORMAT', `${file}: ${what}`);
    this.name = 'ModelFormatError';
  }
}

export class UnsupportedError extends RuntimeError {
  constructor(readonly file: string, what: string) {
    super('UNSUPPORTED', `${file}: ${what}`);
    this.name = 'UnsupportedError';
  }
}

/** A failed or stopped download. `partial` is the file kept for resuming, when there is one. */
export class DownloadError extends RuntimeError {
  constructor(readonly kind: PullErrorKind, message: string, readonly partial?: string) {
    super('DOWNLOAD', message);
    this.name = 'DownloadError';
  }
}

export class CancelledError extends RuntimeError {
  constructor() {
    super('CANCELLED', 'generation cancelled');
    this.name = 'CancelledError';
  }
}
