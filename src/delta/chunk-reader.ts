/**
 * Pull-style reading of a byte stream: exact reads of small bounded pieces (headers, records)
 * and pass-through of long runs chunk by chunk, so neither the tar scanner nor the delta decoder
 * ever holds more than one bounded piece.
 */
const EMPTY = Buffer.alloc(0);

/** A source that can pass over bytes without reading them (a file: it seeks). */
export interface SkippingSource extends AsyncIterable<Uint8Array> {
  /** Skips up to `n` bytes not yet yielded; resolves to how many there were. */
  skip(n: number): Promise<number>;
}

export class ChunkReader {
  private readonly iterator: AsyncIterator<Uint8Array>;
  private readonly source: AsyncIterable<Uint8Array>;
  private head: Buffer = EMPTY;
  private ended = false;
  /** Bytes consumed so far. */
  position = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.source = source;
    this.iterator = source[Symbol.asyncIterator]();
  }

  /** Passes over `n` bytes (seeking when the source can); resolves to how many there were. */
  async skip(n: number): Promise<number> {
    let skipped = Math.min(n, this.head.length);
    this.consume(skipped);
    if (skipped < n && 'skip' in this.source && !this.ended) {
      const more = await (this.source as SkippingSource).skip(n - skipped);
      this.position += more;
      skipped += more;
    }
    while (skipped < n) {
      const chunk = await this.next(n - skipped);
      if (chunk.length === 0) break;
      skipped += chunk.length;
    }
    return skipped;
  }

  /** Makes `head` non-empty unless the stream has ended; false at the end. */
  private async fill(): Promise<boolean> {
    while (this.head.length === 0) {
      if (this.ended) return false;
      const next = await this.iterator.next();
      if (next.done) {
        this.ended = true;
        return false;
      }
      const value = next.value;
      this.head = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    }
    return true;
  }

  private consume(n: number): Buffer {
    const piece = this.head.subarray(0, n);
    this.head = this.head.subarray(n);
    this.position += n;
    return piece;
  }

  /** Up to `n` bytes (callers bound n); fewer only at the end of the stream. */
  async readUpTo(n: number): Promise<Buffer> {
    if (!(await this.fill())) return EMPTY;
    if (this.head.length >= n) return this.consume(n);
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n && (await this.fill())) {
      const piece = this.consume(Math.min(n - got, this.head.length));
      parts.push(piece);
      got += piece.length;
    }
    return Buffer.concat(parts, got);
  }

  /** The next chunk of at most `max` bytes, without copying; empty at the end. */
  async next(max: number): Promise<Buffer> {
    if (!(await this.fill())) return EMPTY;
    return this.consume(Math.min(max, this.head.length));
  }

  /** One byte, or -1 at the end. */
  async byte(): Promise<number> {
    if (this.head.length === 0 && !(await this.fill())) return -1;
    const value = this.head[0]!;
    this.head = this.head.subarray(1);
    this.position++;
    return value;
  }

  async atEnd(): Promise<boolean> {
    return !(await this.fill());
  }
}
