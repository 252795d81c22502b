import type { FileHandle } from 'node:fs/promises';
import type { Readable, Transform } from 'node:stream';
import { EntrySizeError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import { copyFileRangeHashed, type RangeDigest } from '../util/hash-worker.js';
import { writeHashedPieces } from '../util/write-file.js';
import { BLOCK, END_OF_ARCHIVE, encodeFileHeader, paddedSize } from './header.js';
import { type PlacedEntry, padding, streamInto, type TarOutput } from './writer.js';
import type { PieceProducer } from '../util/inflate-file.js';

/** Bytes gathered into one positional write: as few system calls as createFileWriter makes. */
const BATCH = 1 << 20;

/**
 * Writes a tar archive into a file, each entry at the offset it was placed at, so that entries
 * can be written at the same time: a base layer copied (waiting on the disk) beside a delta
 * layer rebuilt (waiting on the CPU). Bytes lying in another file are copied on the hashing
 * thread as they are hashed (copyFile), so the main thread neither moves nor collects them. The
 * bytes are those TarWriter would stream, in the same order. The writer does not own the file;
 * on a failure, `destroy` stops every entry still being written, and the caller removes it.
 */
export class FileTarWriter implements TarOutput {
  readonly concurrent = true;
  private offset = 0;
  private readonly sources = new Set<Readable>();
  private readonly copying = new Set<{ drop(error: Error): void }>();
  private failure: Error | undefined;
  private appending = false;

  constructor(
    private readonly file: FileHandle,
    /** The file's path, for the hashing thread to open it. */
    private readonly path: string,
  ) {}

  private advance(size: number): number {
    if (this.appending) throw new Error('an entry is placed while another is appended');
    const at = this.offset;
    this.offset += BLOCK + paddedSize(size);
    return at;
  }

  async addBuffer(name: string, data: Buffer | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const at = this.advance(bytes.length);
    await this.writeAt([encodeFileHeader(name, bytes.length), bytes, padding(bytes.length)], at);
  }

  place(name: string, size: number): PlacedEntry {
    const offset = this.advance(size);
    const header = encodeFileHeader(name, size);
    return {
      offset,
      write: (data, ...through) => this.copy(header, size, offset, data, through),
      writeLent: (produce) => this.writeLent(header, size, offset, produce),
      copyFile: (from, beside) => this.copyFile(header, size, offset, from, beside),
    };
  }

  private async copyFile(
    header: Buffer,
    size: number,
    offset: number,
    from: { path: string; offset: number },
    beside?: boolean,
  ): Promise<RangeDigest> {
    if (this.failure) throw this.failure;
    const job = copyFileRangeHashed(from.path, from.offset, size, { path: this.path, position: offset + BLOCK }, beside);
    this.copying.add(job);
    try {
      await this.writeAt([header], offset);
      await this.writeAt([padding(size)], offset + BLOCK + size);
      return await job.result;
    } catch (error) {
      job.drop(error as Error);
      throw error;
    } finally {
      this.copying.delete(job);
    }
  }

  private async copy(header: Buffer, size: number, offset: number, data: Readable, through: Transform[]): Promise<void> {
    if (this.failure) {
      data.destroy();
      throw this.failure;
    }
    this.sources.add(data);
    const end = offset + BLOCK + size;
    let position = offset + BLOCK;
    let batch: Buffer[] = [];
    let batched = 0;
    // One write in flight while the next batch gathers; its failure surfaces at the next flush.
    let pending = this.writeAt([header], offset);
    pending.catch(() => undefined);
    const flush = async (): Promise<void> => {
      await pending;
      pending = this.writeAt(batch, position);
      pending.catch(() => undefined);
      position += batched;
      batch = [];
      batched = 0;
    };
    try {
      await streamInto(data, through, async (source) => {
        for await (const chunk of source) {
          if (position + batched + chunk.length > end) throw new EntrySizeError(size, position + batched + chunk.length - offset - BLOCK);
          batch.push(chunk);
          batched += chunk.length;
          if (batched >= BATCH) await flush();
        }
      });
      if (position + batched !== end) throw new EntrySizeError(size, position + batched - offset - BLOCK);
      batch.push(padding(size));
      await flush();
      await pending;
    } finally {
      this.sources.delete(data);
    }
  }

  /** Each lent piece written at its place as it comes (several in flight), then given back. */
  private async writeLent(header: Buffer, size: number, offset: number, produce: PieceProducer): Promise<void> {
    if (this.failure) throw this.failure;
    const start = offset + BLOCK;
    let written = 0;
    const head = this.writeAt([header], offset);
    head.catch(() => undefined);
    try {
      await produce((piece) => {
        const at = start + written;
        written += piece.length;
        return written > size ? Promise.reject(new EntrySizeError(size, written)) : this.writeAt([piece], at);
      });
      if (written !== size) throw new EntrySizeError(size, written);
      await this.writeAt([padding(size)], start + size);
    } catch (error) {
      // Nothing may still write into a file its caller is about to remove.
      await head.catch(() => undefined);
      throw error;
    }
    await head;
  }

  /** Writes all of `buffers` at `position` (pwritev may write less than asked). */
  private async writeAt(buffers: Buffer[], position: number): Promise<void> {
    const rest = buffers.filter((b) => b.length > 0);
    while (rest.length > 0) {
      if (this.failure) throw this.failure;
      const { bytesWritten } = await this.file.writev(rest, position);
      if (bytesWritten === 0) throw new Error('the archive file took no bytes');
      position += bytesWritten;
      let skip = bytesWritten;
      while (rest.length > 0 && skip >= rest[0]!.length) skip -= rest.shift()!.length;
      if (skip > 0) rest[0] = rest[0]!.subarray(skip);
    }
  }

  /**
   * Writes an entry whose size is known only at its end, after every entry placed so far: its
   * bytes from pieces lent by `produce`, hashed as they are written, then its header, named from
   * their digest. No entry may be placed until it is done.
   */
  async append(produce: PieceProducer, name: (digest: Digest) => string): Promise<RangeDigest> {
    if (this.failure) throw this.failure;
    const offset = this.advance(0);
    this.appending = true;
    try {
      const written = await writeHashedPieces(produce, (piece, at) => this.writeAt([piece], offset + BLOCK + at));
      await this.writeAt([encodeFileHeader(name(written.digest), written.size)], offset);
      await this.writeAt([padding(written.size)], offset + BLOCK + written.size);
      this.offset = offset + BLOCK + paddedSize(written.size);
      return written;
    } finally {
      this.appending = false;
    }
  }

  async rename(offset: number, name: string, size: number): Promise<void> {
    await this.writeAt([encodeFileHeader(name, size)], offset);
  }

  async finish(): Promise<void> {
    await this.writeAt([END_OF_ARCHIVE], this.offset);
  }

  destroy(error?: Error): void {
    this.failure ??= error ?? new Error('the archive was abandoned');
    for (const source of this.sources) source.destroy(this.failure);
    for (const job of this.copying) job.drop(this.failure);
  }
}
