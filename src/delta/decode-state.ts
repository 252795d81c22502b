import { createHash, type Hash } from 'node:crypto';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { Digest } from '../util/digest.js';
import { Sha256Thread } from '../util/sha256-thread.js';
import { type BaseReader, READ_AHEAD } from './base-bytes.js';
import type { BaseFile, BaseFileIndex } from './base-index.js';
import { streamDelta } from './binary-delta.js';
import { DeltaCorruptError, DeltaLimitError, DeltaReferenceError } from './errors.js';
import { DICT_MAX, type OrdinalCoder } from './format.js';
import type { RecordReader } from './record-reader.js';

const BATCH = 64 * 1024;
/** Pieces smaller than this are gathered (copying bigger ones would double their garbage). */
const SMALL = 8 * 1024;

/** A base layer the delta names, and where the index has it (undefined: the base lacks it). */
export interface Slot {
  diffId: Digest;
  layer: number | undefined;
}

interface Setup {
  source: string;
  out: Writable;
  /** The most bytes the delta may produce. */
  limit: number;
  slots: Slot[];
  index: BaseFileIndex;
  reader: BaseReader | undefined;
  ordinals: OrdinalCoder;
}

/** The output side of a decode: bounded, hashed, written with backpressure; and base access. */
export class DecodeState {
  private readonly total = new Sha256Thread();
  private produced = 0;
  private digest: Digest | undefined;
  private window: Buffer | undefined;
  private batch: Buffer[] = [];
  private batchLength = 0;

  constructor(private readonly setup: Setup) {}

  get source(): string {
    return this.setup.source;
  }

  /** Refuses, before producing anything, output that would pass the limit. */
  reserve(bytes: number, what: string): void {
    if (this.produced + bytes > this.setup.limit) {
      throw new DeltaLimitError(
        this.source,
        `delta would produce more than the ${this.setup.limit} bytes allowed (${what} of ${bytes} bytes after ${this.produced})`,
      );
    }
  }

  async emit(data: Buffer): Promise<void> {
    if (data.length === 0) return;
    this.reserve(data.length, 'a record');
    this.produced += data.length;
    await this.total.update(data);
    // Headers and small files come a few hundred bytes at a time: gathered, they cost one
    // write per 64 KiB instead of one each.
    if (data.length >= SMALL) {
      await this.flush();
      return this.write(data);
    }
    this.batch.push(data);
    this.batchLength += data.length;
    if (this.batchLength >= BATCH) await this.flush();
  }

  /** Writes what emit gathered. */
  async flush(): Promise<void> {
    if (this.batchLength === 0) return;
    const data = this.batch.length === 1 ? this.batch[0]! : Buffer.concat(this.batch, this.batchLength);
    this.batch = [];
    this.batchLength = 0;
    await this.write(data);
  }

  private async write(data: Buffer): Promise<void> {
    if (!this.setup.out.write(data)) await once(this.setup.out, 'drain');
  }

  /** A record's source: slot and ordinal, checked against the base. */
  async sourceFile(records: RecordReader, slotField?: number): Promise<BaseFile> {
    const slot = slotField ?? (await records.varint('base layer slot'));
    const { slots, index } = this.setup;
    if (slot >= slots.length) {
      throw new DeltaReferenceError(this.source, `delta refers to base layer slot ${slot}, out of range (it names ${slots.length})`);
    }
    const { diffId, layer } = slots[slot]!;
    const ordinal = this.setup.ordinals.decode(slot, await records.varint('file ordinal'));
    if (layer === undefined) throw new DeltaReferenceError(this.source, `delta needs base layer ${diffId}, which the base lacks`);
    const file = index.file(layer, ordinal);
    if (file === undefined) {
      const count = index.layers[layer]!.files.length;
      throw new DeltaReferenceError(
        this.source,
        `delta refers to file ${ordinal} of base layer ${index.layers[layer]!.diffId}, which has ${count} files`,
      );
    }
    return file;
  }

  async read(file: BaseFile, start: number, length: number, ahead = false): Promise<Buffer> {
    if (this.setup.reader === undefined) {
      throw new DeltaReferenceError(this.source, "delta needs the base layers' bytes, and none were given");
    }
    return this.setup.reader.read(file.layer, file.offset + start, length, ahead);
  }

  /** `length` bytes of a base file from `start`, written out in reads of at most READ_AHEAD. */
  async copy(file: BaseFile, start: number, length: number, hash?: Hash): Promise<void> {
    for (let at = start; at < start + length; at += READ_AHEAD) {
      const piece = await this.read(file, at, Math.min(READ_AHEAD, start + length - at), true);
      hash?.update(piece);
      await this.emit(piece);
    }
  }

  /** A window of a base file in a dictionary buffer reused from piece to piece. */
  async dictionary(file: BaseFile, start: number, length: number): Promise<Buffer> {
    this.window ??= Buffer.allocUnsafe(DICT_MAX);
    const target = this.window.subarray(0, length);
    if (this.setup.reader === undefined) return this.read(file, start, length);
    await this.setup.reader.readInto(file.layer, file.offset + start, target);
    return target;
  }

  /** A base file's whole content, checked against the index's hash if it has one. */
  async copyFile(file: BaseFile): Promise<void> {
    this.reserve(file.size, `file '${file.path}'`);
    const hash = file.hash === undefined ? undefined : createHash('sha256');
    await this.copy(file, 0, file.size, hash);
    if (hash !== undefined && hash.digest('binary') !== file.hash) {
      throw new DeltaCorruptError(this.source, `base file '${file.path}' does not match its hash in the base index`);
    }
  }

  /**
   * Writes what a delta rebuilds, then checks its size and digest: a mismatch may be found after
   * some of its bytes are out, as with the total; a failed decode's output is never to be used.
   */
  async applyDelta(payload: Buffer, dictionary: Buffer, size: number, digest: Buffer, what: string): Promise<void> {
    this.reserve(size, `delta of '${what}'`);
    const hash = createHash('sha256');
    const whole = await streamDelta(payload, dictionary, size, async (chunk) => {
      hash.update(chunk);
      await this.emit(chunk);
    });
    if (!whole || !hash.digest().equals(digest)) {
      throw new DeltaCorruptError(this.source, `delta of '${what}' does not rebuild the file it was made from`);
    }
  }

  async finish(size: number, digest: Buffer): Promise<void> {
    this.digest = (await this.total.digest()).digest;
    if (size !== this.produced || this.digest !== `sha256:${digest.toString('hex')}`) {
      throw new DeltaCorruptError(
        this.source,
        `delta rebuilt ${this.produced} bytes hashing to ${this.digest}, its END record says ${size} bytes, sha256:${digest.toString('hex')}`,
      );
    }
  }

  /** Releases the output's hashing thread after a failed decode. */
  abort(): void {
    this.total.abort();
  }

  result(): { digest: Digest; size: number } {
    return { digest: this.digest!, size: this.produced };
  }
}
