// The quantised compressed branch of one layer (8/4/2 bits): each block's packed codes and fp16 (scale, zero)
// pairs exactly as quantizer.ts lays a block out, block after block in buffers that grow (GrowableRows, one row a
// block), so that the CPU graphs read the whole branch in place and dequantise it themselves (packedCodes.ts's
// stored form): no step dequantises or copies it in JavaScript, and the bytes held are the bytes accounted.
import type { CompressedBits } from '../../protocol';
import { GrowableRows } from './growableRows';
import { type QuantisedBlock, blockLayout } from './quantizer';

/** Blocks of room a layer's buffers start with: grown by doubling, or reserved for a prefill's final length. */
const INITIAL_BLOCKS = 2;

export interface QuantisedPair {
  k: QuantisedBlock;
  v: QuantisedBlock;
}

export class QuantisedRows {
  private readonly kCodes: GrowableRows<Uint8Array>;
  private readonly kPairs: GrowableRows<Uint16Array>;
  private readonly vCodes: GrowableRows<Uint8Array>;
  private readonly vPairs: GrowableRows<Uint16Array>;

  constructor(readonly window: number, kRank: number, vRank: number, bits: Exclude<CompressedBits, 16>) {
    const k = blockLayout('k', window, kRank, bits), v = blockLayout('v', window, vRank, bits);
    this.kCodes = GrowableRows.bytes(k.codeBytes, INITIAL_BLOCKS);
    this.kPairs = GrowableRows.half(k.pairs * 2, INITIAL_BLOCKS);
    this.vCodes = GrowableRows.bytes(v.codeBytes, INITIAL_BLOCKS);
    this.vPairs = GrowableRows.half(v.pairs * 2, INITIAL_BLOCKS);
  }

  get blocks(): number {
    return this.kCodes.rows;
  }

  /** Bytes of the blocks held (spare room is allocator slack, as for every GrowableRows). */
  get bytes(): number {
    return this.kCodes.bytes + this.kPairs.bytes + this.vCodes.bytes + this.vPairs.bytes;
  }

  append(block: QuantisedPair): void {
    const parts = [[this.kCodes, block.k.codes], [this.kPairs, block.k.scaleZero], [this.vCodes, block.v.codes], [this.vPairs, block.v.scaleZero]] as const;
    for (const [rows, data] of parts) if (data.length !== rows.width) throw new RangeError(`a quantised block part of ${data.length} elements, expected ${rows.width}`);
    this.kCodes.append(block.k.codes, 1);
    this.kPairs.append(block.k.scaleZero, 1);
    this.vCodes.append(block.v.codes, 1);
    this.vPairs.append(block.v.scaleZero, 1);
  }

  /** Block `b` as a block of its own (copies: what a snapshot or a device copy keeps past later changes). */
  block(b: number): QuantisedPair {
    const part = <A extends Uint8Array | Uint16Array>(rows: GrowableRows<A>): A => rows.slice(b, b + 1).slice() as A;
    return { k: { codes: part(this.kCodes), scaleZero: part(this.kPairs) }, v: { codes: part(this.vCodes), scaleZero: part(this.vPairs) } };
  }

  /** Every block held, read in place (views valid until the next append, truncate or reserve). */
  view(): QuantisedPair {
    return { k: { codes: this.kCodes.view(), scaleZero: this.kPairs.view() }, v: { codes: this.vCodes.view(), scaleZero: this.vPairs.view() } };
  }

  truncate(blocks: number): void {
    for (const rows of [this.kCodes, this.kPairs, this.vCodes, this.vPairs]) rows.truncate(blocks);
  }

  reserve(blocks: number): void {
    for (const rows of [this.kCodes, this.kPairs, this.vCodes, this.vPairs]) rows.reserve(blocks);
  }
}
