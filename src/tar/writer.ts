import { Socket } from 'node:net';
import { WriteStream } from 'node:fs';
import { finished, pipeline } from 'node:stream/promises';
import type { Readable, Transform, Writable } from 'node:stream';
import { EntrySizeError } from '../errors.js';
import type { Digest } from '../util/digest.js';
import type { PieceProducer } from '../util/inflate-file.js';
import { BLOCK, END_OF_ARCHIVE, encodeFileHeader, paddedSize } from './header.js';

/** An entry whose place in the archive is taken: its bytes follow through `write` or `writeLent`. */
export interface PlacedEntry {
  readonly offset: number;
  /** Streams exactly the entry's size from `data` (through `through`, in order) into it. */
  write(data: Readable, ...through: Transform[]): Promise<void>;
  /** Writes exactly the entry's size from pieces lent by `produce`, each given back once written. */
  writeLent(produce: PieceProducer): Promise<void>;
  /**
   * Copies the entry's bytes from where they lie in a file, off the main thread, and says
   * what they hash to (the caller checks it); only outputs that are files can. `beside`: it may
   * run on a thread of its own beside other copies (util/hash-worker.ts).
   */
  copyFile?(from: { path: string; offset: number }, beside?: boolean): Promise<{ digest: Digest; size: number }>;
}

/**
 * Where a tar archive is written: a stream, entry after entry (TarWriter), or a file, each
 * entry at the offset it was given (tar/file-writer.ts), so that several can be written at once
 * (`concurrent`). Either way entries lie in the order they were placed.
 */
export interface TarOutput {
  readonly concurrent: boolean;
  addBuffer(name: string, data: Buffer | string): Promise<void>;
  /** Takes the entry's place now; for a stream, its bytes must be written before the next entry is placed. */
  place(name: string, size: number): PlacedEntry;
  /** Names the entry written at `offset` anew, once its digest is known; only outputs that are files can. */
  rename?(offset: number, name: string, size: number): Promise<void>;
  finish(): Promise<void>;
  destroy(error?: Error): void;
}

/**
 * Writes a tar stream entry by entry into `output`, one entry's data streaming at a time, with
 * the headers FileTarWriter writes (root, mode 0644, mtime 0): equal inputs give equal archives.
 * A lent piece is handed to an output that is done with it when its write's callback runs (a
 * socket, a pipe, a file); any other output gets a copy, as it may keep the chunk it was given.
 */
export class TarWriter implements TarOutput {
  readonly concurrent = false;
  private offset = 0;
  private failure: Error | undefined;
  private readonly ended: Promise<void>;
  private readonly lends: boolean;
  /** Sources being copied and writes waiting for room: stopped when the output fails. */
  private readonly sources = new Set<Readable>();
  private readonly waiting = new Set<(error: Error) => void>();

  constructor(private readonly output: Writable) {
    this.lends = output instanceof Socket || output instanceof WriteStream || output === process.stdout;
    this.ended = finished(output, { readable: false });
    this.ended.then(
      () => this.fail(new Error('the output was closed')),
      (error: Error) => this.fail(error),
    );
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const source of this.sources) source.destroy(this.failure);
    for (const stop of this.waiting) stop(this.failure);
    this.waiting.clear();
  }

  /** Writes `chunk`; resolves once the output takes more (for a lent chunk: once it is done with it). */
  private send(chunk: Buffer, lent = false): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (lent && this.lends) {
      return new Promise((resolve, reject) => this.output.write(chunk, (error) => (error ? reject(error) : resolve())));
    }
    if (this.output.write(lent ? Buffer.from(chunk) : chunk)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stop = (error: Error) => {
        this.output.off('drain', go);
        reject(error);
      };
      const go = () => {
        this.waiting.delete(stop);
        resolve();
      };
      this.waiting.add(stop);
      this.output.once('drain', go);
    });
  }

  private advance(size: number): number {
    const at = this.offset;
    this.offset += BLOCK + paddedSize(size);
    return at;
  }

  async addBuffer(name: string, data: Buffer | string): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    this.advance(bytes.length);
    await this.send(encodeFileHeader(name, bytes.length));
    await this.send(bytes);
    await this.send(padding(bytes.length));
  }

  place(name: string, size: number): PlacedEntry {
    const header = encodeFileHeader(name, size);
    let written = 0;
    const take = (chunk: Buffer, lent: boolean): Promise<void> => {
      written += chunk.length;
      return written > size ? Promise.reject(new EntrySizeError(size, written)) : this.send(chunk, lent);
    };
    const end = async () => {
      if (written !== size) throw new EntrySizeError(size, written);
      await this.send(padding(size));
    };
    return {
      offset: this.advance(size),
      write: async (data, ...through) => {
        this.sources.add(data);
        try {
          await this.send(header);
          await streamInto(data, through, async (source) => {
            for await (const chunk of source) await take(chunk, false);
          });
        } catch (error) {
          data.destroy(); // a failed header leaves it unread
          throw error;
        } finally {
          this.sources.delete(data);
        }
        await end();
      },
      writeLent: async (produce) => {
        await this.send(header);
        await produce((piece) => take(piece, true));
        await end();
      },
    };
  }

  async finish(): Promise<void> {
    await this.send(END_OF_ARCHIVE);
    this.output.end();
    await this.ended;
  }

  destroy(error?: Error): void {
    this.fail(error ?? new Error('the archive was abandoned'));
    // Cut, not failed: the error is the caller's to report, and stdout's 'error' is fatal.
    this.output.destroy();
  }
}

/** `data` through `through` into an async consumer (pipeline's variadic form, typed). */
export function streamInto(data: Readable, through: Transform[], consume: (source: AsyncIterable<Buffer>) => Promise<void>): Promise<void> {
  return (pipeline as unknown as (...stages: unknown[]) => Promise<void>)(data, ...through, consume);
}

export function padding(size: number): Buffer {
  return Buffer.alloc(paddedSize(size) - size);
}
