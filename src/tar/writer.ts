import { pipeline } from 'node:stream/promises';
import type { Readable, Transform, Writable } from 'node:stream';
import tar from 'tar-stream';
import type { Digest } from '../util/digest.js';
import { BLOCK, paddedSize } from './header.js';

const EPOCH = new Date(0);

/** An entry whose place in the archive is taken: its bytes follow through `write`. */
export interface PlacedEntry {
  readonly offset: number;
  /** Streams exactly the entry's size from `data` (through `through`, in order) into it. */
  write(data: Readable, ...through: Transform[]): Promise<void>;
  /**
   * Copies the entry's bytes from where they lie in a file, off the main thread, and says
   * what they hash to (the caller checks it); only outputs that are files can.
   */
  copyFile?(from: { path: string; offset: number }): Promise<{ digest: Digest; size: number }>;
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
 * Writes a tar stream entry by entry into `output`, one entry's data streaming at a time.
 * Entries get fixed metadata (root, mode 0644, mtime 0) so equal inputs give equal archives.
 */
export class TarWriter implements TarOutput {
  readonly concurrent = false;
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;
  /** Where the next header goes: every entry ddiff writes has a short ASCII name, so one header block. */
  private offset = 0;

  constructor(output: Writable) {
    this.done = pipeline(this.pack as unknown as Readable, output);
    this.done.catch(() => undefined); // surfaced by finish()
  }

  private header(name: string, size: number): tar.Header {
    return {
      name,
      size,
      mode: 0o644,
      mtime: EPOCH,
      type: 'file',
      linkname: '',
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
      devmajor: 0,
      devminor: 0,
    };
  }

  private advance(size: number): number {
    const at = this.offset;
    this.offset += BLOCK + paddedSize(size);
    return at;
  }

  addBuffer(name: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    this.advance(buf.length);
    return new Promise((resolve, reject) => {
      this.pack.entry(this.header(name, buf.length), buf, (error) => (error ? reject(error) : resolve()));
    });
  }

  place(name: string, size: number): PlacedEntry {
    return {
      offset: this.advance(size),
      write: async (data, ...through) => {
        const sink = this.pack.entry(this.header(name, size)) as unknown as Writable;
        const flow = pipeline([data, ...through, sink] as unknown as [Readable, Writable]);
        await Promise.race([flow, this.done]);
      },
    };
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    await this.done;
  }

  destroy(error?: Error): void {
    this.pack.destroy(error);
  }
}
