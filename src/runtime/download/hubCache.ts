// The Hugging Face hub cache layout, as huggingface_hub writes it, so that downloads made here are found by
// discovery and shared with every other tool that reads the cache (transformers, huggingface-cli, llama.cpp -hf):
//   models--ORG--NAME/blobs/ETAG                 the content, named by its sha256 (LFS) or git blob sha1
//   models--ORG--NAME/blobs/ETAG.incomplete      a download in progress (huggingface_hub resumes the same file)
//   models--ORG--NAME/snapshots/COMMIT/PATH      a relative link to ../../blobs/ETAG
//   models--ORG--NAME/refs/REVISION              the commit a branch or tag pointed at when it was fetched
import * as fs from 'node:fs';
import * as path from 'node:path';

export class HubCacheRepo {
  readonly dir: string;

  constructor(cacheDir: string, readonly repo: string) {
    this.dir = path.join(cacheDir, `models--${repo.split('/').join('--')}`);
  }

  blob(etag: string): string {
    return path.join(this.dir, 'blobs', etag);
  }

  incomplete(etag: string): string {
    return `${this.blob(etag)}.incomplete`;
  }

  snapshot(commit: string): string {
    return path.join(this.dir, 'snapshots', commit);
  }

  /** The snapshot's entry for `file` (which may lie in a subfolder of the repo). */
  pointer(commit: string, file: string): string {
    return path.join(this.snapshot(commit), ...file.split('/'));
  }

  /** Whether the snapshot already has `file` and its blob is whole (a dangling link is an interrupted download). */
  has(commit: string, file: string, size: number | undefined): boolean {
    const stat = fs.statSync(this.pointer(commit, file), { throwIfNoEntry: false });
    return stat !== undefined && stat.isFile() && (size === undefined || stat.size === size);
  }

  /** Links snapshots/COMMIT/FILE to its blob (relative, as huggingface_hub does; a copy where links are refused). */
  link(commit: string, file: string, etag: string): string {
    const pointer = this.pointer(commit, file);
    fs.mkdirSync(path.dirname(pointer), { recursive: true });
    fs.rmSync(pointer, { force: true });
    const target = path.relative(path.dirname(pointer), this.blob(etag));
    try {
      fs.symlinkSync(target, pointer);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
      fs.copyFileSync(this.blob(etag), pointer); // Windows without developer mode
    }
    return pointer;
  }

  /** refs/REVISION -> COMMIT, for a branch or tag (a revision that is already a commit needs no ref). */
  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = path.join(this.dir, 'refs', ...revision.split('/'));
    fs.mkdirSync(path.dirname(ref), { recursive: true });
    fs.writeFileSync(ref, commit);
  }

  ensureBlobsDir(): string {
    const blobs = path.join(this.dir, 'blobs');
    fs.mkdirSync(blobs, { recursive: true });
    return blobs;
  }
}
