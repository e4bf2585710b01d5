// What `cskv-code pull --json` prints, one JSON object a line: the command writes these and the extension's
// download notification reads them, so the shape lives here, once.

/** Why a pull stopped; each kind comes with a message that says what to do. */
export type PullErrorKind =
  | 'offline'      // the server cannot be reached (no network, DNS, HF_HUB_OFFLINE)
  | 'unauthorized' // 401 without a token: a private or gated repo
  | 'forbidden'    // 403, or a gated repo whose conditions this token has not accepted
  | 'not-found'    // no such repo, revision or file
  | 'http'         // any other refusal by the server, after retries where retrying made sense
  | 'checksum'     // the bytes do not have the size or hash the server announced: the partial file is deleted
  | 'disk-full'    // not enough space before the start, or ENOSPC while writing (the partial file is kept)
  | 'cancelled'    // the user stopped it (Ctrl-C, the notification's Cancel): the partial file is kept
  | 'busy'         // another running pull is writing the same file
  | 'bad-target';  // the repo / file / URL named does not lead to a model this runtime takes

export interface PlannedFile {
  /** The file's path in the repo (or its name, for a plain URL). */
  name: string;
  /** Bytes, when the server said. */
  bytes: number | undefined;
  /** Already complete in the cache: nothing to fetch. */
  cached: boolean;
}

export type PullEvent =
  | { event: 'plan'; source: string; destination: string; files: PlannedFile[]; totalBytes: number | undefined }
  | { event: 'start'; file: string; bytes: number | undefined; resumeFrom: number }
  | {
      event: 'progress'; file: string; bytes: number; total: number | undefined;
      /** Over every file of the pull. */
      overallBytes: number; overallTotal: number | undefined;
      bytesPerSecond: number; etaSeconds: number | undefined;
    }
  | { event: 'retry'; file: string; attempt: number; reason: string; resumeFrom: number }
  | { event: 'file-done'; file: string; path: string; verified: 'sha256' | 'git-sha1' | 'size' | 'nothing' }
  | { event: 'done'; modelPath: string }
  | { event: 'error'; kind: PullErrorKind; message: string; partial: string | undefined };
