// The bytes of a saved cache: a JSON header (shape, token ids) followed by each layer's full-precision rows and
// compressed blocks. The reader checks every length against the header, so a truncated or foreign snapshot is
// refused rather than read into the cache.
import type { CacheShape, CacheState, CompressedBlock } from './biBranchCache';
import { packedBytes, VALUE_GROUP, type QuantisedBlock } from './quantizer';

const MAGIC = 'CSKVSNAP';
const VERSION = 1;

export interface Snapshot {
  shape: CacheShape;
  history: number[];
  state: CacheState;
}

export function encodeSnapshot(s: Snapshot): Uint8Array {
  const parts: Uint8Array[] = [];
  const add = (a: ArrayBufferView): void => { parts.push(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)); };
  for (const layer of s.state.layers) {
    for (const rows of [layer.kFull, layer.vFull, layer.kPending, layer.vPending]) if (rows) add(rows);
    for (const block of layer.blocks) {
      for (const part of [block.k, block.v]) {
        if (part instanceof Uint16Array) add(part);
        else {
          add(part.codes);
          add(part.scaleZero);
        }
      }
    }
  }
  const header = Buffer.from(JSON.stringify({ version: VERSION, shape: s.shape, history: s.history, tokens: s.state.tokens, compressedTokens: s.state.compressedTokens }));
  const lengths = Buffer.alloc(12);
  lengths.write(MAGIC, 0, 'latin1');
  lengths.writeUInt32LE(header.length, 8);
  const body = Buffer.concat(parts);
  // Pad so the body starts 4-byte aligned (typed-array views need it).
  const pad = Buffer.alloc((4 - ((12 + header.length) % 4)) % 4, 0x20);
  return Buffer.concat([lengths, header, pad, body]);
}

interface SnapshotHeader {
  version: number;
  shape: CacheShape;
  history: number[];
  tokens: number;
  compressedTokens: number;
}

function readHeader(buf: Buffer): { header: SnapshotHeader; headerLength: number } {
  if (buf.length < 12 || buf.toString('latin1', 0, 8) !== MAGIC) throw new Error('not a cache snapshot');
  const headerLength = buf.readUInt32LE(8);
  if (12 + headerLength > buf.length) throw new Error('snapshot header runs past the end');
  const header = JSON.parse(buf.toString('utf8', 12, 12 + headerLength)) as SnapshotHeader;
  if (header.version !== VERSION) throw new Error(`snapshot version ${header.version}, expected ${VERSION}`);
  if (!Array.isArray(header.history)) throw new Error('snapshot has no token history');
  return { header, headerLength };
}

/** The token ids a snapshot holds, read from its header alone (to check a saved context before restoring it). */
export function snapshotHistory(bytes: Uint8Array): number[] {
  return readHeader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).header.history;
}

export function decodeSnapshot(bytes: Uint8Array): Snapshot {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const { header, headerLength } = readHeader(buf);
  let at = 12 + headerLength;
  at += (4 - (at % 4)) % 4;
  const body = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  const take = (byteLength: number): Uint8Array => {
    if (at + byteLength > body.length) throw new Error('snapshot is truncated');
    const out = body.slice(at, at + byteLength);
    at += byteLength;
    return out;
  };
  const f32 = (n: number): Float32Array => new Float32Array(take(n * 4).buffer);
  const u16 = (n: number): Uint16Array => new Uint16Array(take(n * 2).buffer);
  const { shape } = header;
  const W = shape.window, bits = shape.bits;
  const fullTokens = header.tokens - header.compressedTokens;
  const blocks = header.compressedTokens / W;
  const layers: CacheState['layers'] = [];
  for (let i = 0; i < shape.layers; i++) {
    const rk = shape.ranks?.k[i] ?? 0, rv = shape.ranks?.v[i] ?? 0;
    const compressed = shape.ranks !== undefined;
    const layer: CacheState['layers'][number] = {
      kFull: f32(fullTokens * shape.kvDim), vFull: f32(fullTokens * shape.kvDim),
      kPending: compressed ? f32(fullTokens * rk) : undefined, vPending: compressed ? f32(fullTokens * rv) : undefined,
      blocks: [],
    };
    const part = (rank: number, kind: 'k' | 'v'): Uint16Array | QuantisedBlock => {
      if (bits === 16) return u16(W * rank);
      const pairs = kind === 'k' ? rank : W * Math.ceil(rank / VALUE_GROUP);
      return { codes: take(packedBytes(W * rank, bits)), scaleZero: u16(pairs * 2) };
    };
    for (let b = 0; b < (compressed ? blocks : 0); b++) {
      const block: CompressedBlock = { k: part(rk, 'k'), v: part(rv, 'v') };
      layer.blocks.push(block);
    }
    layers.push(layer);
  }
  if (at !== body.length) throw new Error('snapshot has trailing bytes');
  return { shape, history: header.history, state: { tokens: header.tokens, compressedTokens: header.compressedTokens, layers } };
}
