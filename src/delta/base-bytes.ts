import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { BaseFileIndex } from './base-index.js';

/**
 * Random access to the base layers' uncompressed tar bytes, numbered as in the BaseFileIndex.
 * The caller supplies it (spool.ts has one over spooled temp files). `readInto`, when given,
 * saves a stream per read and lets comparisons reuse one buffer.
 */
export interface BaseBytes {
  openRange(layer: number, offset: number, length: number): Readable;
  /** Fills `target` from `offset` on; resolves to the bytes read (fewer only at the layer's end). */
  readInto?(layer: number, offset: number, target: Buffer): Promise<number>;
}

/** The base as a delta sees it: its index and, where deltas are made or applied, its bytes. */
export interface DeltaBase {
  index: BaseFileIndex;
  bytes?: BaseBytes;
}

/** What a BaseReader reports when the base's bytes are not what its index says. */
type ShortRead = (layer: number, offset: number, length: number, got: number) => Error;

/** Also the size of the reads that copy base bytes out, so no copy allocates more. */
export const READ_AHEAD = 64 * 1024;
/** The comparison buffer: reused, so it may be larger (fewer reads). */
const SCRATCH = 256 * 1024;

async function collect(stream: Readable, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let got = 0;
  for await (const chunk of stream) {
    const buf = chunk as Buffer;
    // Never keep more than asked for, whatever the caller's stream yields.
    const keep = buf.subarray(0, Math.max(0, length - got));
    parts.push(keep);
    got += keep.length;
    if (got >= length) {
      stream.destroy();
      break;
    }
  }
  return Buffer.concat(parts, got);
}

/**
 * Reads base ranges: comparisons through one reused buffer, copies with read-ahead (they come
 * mostly in the base's own order, so one read serves many small files).
 */
export class BaseReader {
  private cached: { layer: number; start: number; data: Buffer } | undefined;
  /** Read-ahead for comparisons: its bytes never leave this class, so one buffer serves them all. */
  private readonly scratch = Buffer.allocUnsafe(SCRATCH);
  private scratchAt: { layer: number; start: number; length: number } | undefined;

  constructor(
    private readonly bytes: BaseBytes,
    private readonly index: BaseFileIndex,
    private readonly shortRead: ShortRead,
  ) {}

  private async fetch(layer: number, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (this.bytes.readInto === undefined) return collect(this.bytes.openRange(layer, offset, length), length);
    const target = into ?? Buffer.allocUnsafe(length);
    const got = await this.bytes.readInto(layer, offset, target.subarray(0, length));
    return target.subarray(0, got);
  }

  /** Whether the base bytes at `offset` are `parts`, concatenated (false if the layer is shorter). */
  async equals(layer: number, offset: number, parts: Buffer[]): Promise<boolean> {
    let at = offset;
    for (const part of parts) {
      for (let done = 0; done < part.length; ) {
        const from = await this.fill(layer, at);
        const length = Math.min(part.length - done, this.scratchAt!.length - from);
        // compare() with ranges: no view objects, which were a tenth of an encode's time.
        if (length <= 0 || this.scratch.compare(part, done, done + length, from, from + length) !== 0) return false;
        done += length;
        at += length;
      }
    }
    return true;
  }

  /** sha256 of `length` base bytes at `offset` (32 bytes as a 'binary' string), read through the scratch buffer. */
  async sha256(layer: number, offset: number, length: number): Promise<string> {
    const hash = createHash('sha256');
    for (let done = 0; done < length; ) {
      const view = await this.scratchView(layer, offset + done, length - done);
      if (view.length === 0) throw this.shortRead(layer, offset, length, done);
      hash.update(view);
      done += view.length;
    }
    return hash.digest('binary');
  }

  /** Up to `length` base bytes at `offset` from the scratch buffer, refilled when needed. */
  private async scratchView(layer: number, offset: number, length: number): Promise<Buffer> {
    const from = await this.fill(layer, offset);
    return this.scratch.subarray(from, from + Math.min(length, this.scratchAt!.length - from));
  }

  /** Makes the scratch buffer hold the base bytes at `offset` (if the layer has any); returns where. */
  private async fill(layer: number, offset: number): Promise<number> {
    let hit = this.scratchAt;
    if (hit?.layer !== layer || offset < hit.start || offset >= hit.start + hit.length) {
      const want = Math.max(0, Math.min(SCRATCH, (this.index.layers[layer]?.size ?? 0) - offset));
      this.scratchAt = undefined;
      const data = want === 0 ? Buffer.alloc(0) : await this.fetch(layer, offset, want, this.scratch);
      if (data.buffer !== this.scratch.buffer) data.copy(this.scratch);
      hit = this.scratchAt = { layer, start: offset, length: data.length };
    }
    return offset - hit.start;
  }

  /** Fills `target` with the base bytes at `offset` (a dictionary buffer the caller reuses). */
  async readInto(layer: number, offset: number, target: Buffer): Promise<void> {
    const data = await this.fetch(layer, offset, target.length, target);
    if (data.buffer !== target.buffer || data.byteOffset !== target.byteOffset) data.copy(target);
    if (data.length < target.length) throw this.shortRead(layer, offset, target.length, data.length);
  }

  /**
   * `length` base bytes at `offset`, in a buffer of their own. With `ahead`, for reads that go
   * through the base in order (a decode's copies), a small read fetches READ_AHEAD bytes and
   * the next ones are served from them.
   */
  async read(layer: number, offset: number, length: number, ahead = false): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const hit = this.cached;
    if (hit?.layer === layer && offset >= hit.start && offset + length <= hit.start + hit.data.length) {
      return hit.data.subarray(offset - hit.start, offset - hit.start + length);
    }
    const layerSize = this.index.layers[layer]?.size ?? 0;
    const want = !ahead || length >= READ_AHEAD ? length : Math.max(length, Math.min(READ_AHEAD, layerSize - offset));
    const data = await this.fetch(layer, offset, want);
    if (data.length < length) throw this.shortRead(layer, offset, length, data.length);
    if (want > length) this.cached = { layer, start: offset, data };
    return data.length === length ? data : data.subarray(0, length);
  }
}
