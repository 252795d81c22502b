import { type FileHandle, open } from 'node:fs/promises';
import { BufferPool } from './buffer-pool.js';
import { writeAll } from './write-file.js';

const PIECE = 1 << 20;
const PIECES = 4;

/**
 * A file written at its end from views of someone else's buffer (a socket's read buffer): each
 * view is copied into one of a few reused 1 MiB pieces, and full pieces are written on the
 * thread pool while the next ones fill. Memory stays at four pieces, whatever is written.
 */
export class SpoolFile {
  private readonly pieces = new BufferPool(PIECE, PIECES);
  private piece: Buffer | undefined;
  private filled = 0;
  private written = 0;
  private readonly writing = new Set<Promise<void>>();
  private failure: unknown;

  private constructor(
    readonly path: string,
    private readonly file: FileHandle,
  ) {}

  static async create(path: string): Promise<SpoolFile> {
    return new SpoolFile(path, await open(path, 'w'));
  }

  /** Bytes appended so far: where the next one goes. */
  get size(): number {
    return this.written + this.filled;
  }

  /** Copies `view` in; a promise when the caller must wait for a piece to be written first. */
  append(view: Buffer): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let offset = 0;
    while (offset < view.length) {
      this.piece ??= this.pieces.takeNow();
      if (!this.piece) {
        const rest = view.subarray(offset);
        return this.pieces.take().then((piece) => {
          this.piece = piece;
          return this.append(rest);
        });
      }
      const copied = view.copy(this.piece, this.filled, offset);
      offset += copied;
      this.filled += copied;
      if (this.filled === PIECE) this.send();
    }
    return undefined;
  }

  private send(): void {
    const piece = this.piece!;
    const written = writeAll(this.file, piece.subarray(0, this.filled), this.written).then(
      () => this.pieces.give(piece),
      (error: unknown) => {
        this.failure ??= error;
        this.pieces.give(piece);
      },
    );
    this.written += this.filled;
    this.piece = undefined;
    this.filled = 0;
    this.writing.add(written);
    void written.then(() => this.writing.delete(written));
  }

  /** Writes what is left and closes the file; rejects with the first write's failure. */
  async finish(): Promise<void> {
    if (this.piece && this.filled > 0) this.send();
    await Promise.all(this.writing);
    await this.file.close();
    if (this.failure !== undefined) throw this.failure;
  }

  /** Closes the file without waiting for anything but the writes in flight. */
  async abandon(): Promise<void> {
    await Promise.all(this.writing);
    await this.file.close().catch(() => undefined);
  }
}
