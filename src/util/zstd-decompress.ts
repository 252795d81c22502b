import { Duplex } from 'node:stream';
import { createZstdDecompress, type ZstdDecompress } from 'node:zlib';

const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames: 0x184D2A50 to 0x184D2A5F. */
const SKIPPABLE_MAGIC = 0x184d2a50;

type ScanState = 'magic' | 'descriptor' | 'header' | 'block' | 'body' | 'checksum' | 'skipSize' | 'skip';

/**
 * Finds where the frames of a zstd stream begin and end from their headers alone (RFC 8878
 * §3.1): a frame is a header, blocks (each a 3-byte header and its size in bytes) up to the one
 * marked last, then an optional 4-byte checksum; a skippable frame is a magic number, a size
 * and that many bytes. Block contents are skipped, never looked at.
 */
export class ZstdFrameScanner {
  private state: ScanState = 'magic';
  /** Bytes still to come of the current field or body. */
  private need = 4;
  /** The current field's bytes so far (at most 14: a frame header after its magic). */
  private readonly field = Buffer.alloc(16);
  private fieldBytes = 0;
  private checksum = false;
  private lastBlock = false;
  private inFrame = false;
  /** zstd frames begun so far. */
  frames = 0;
  /** Bytes scanned so far. */
  offset = 0;

  /** Why the stream may not end here (inside a frame, or in a magic number), if it may not. */
  endProblem(): string | undefined {
    if (this.state === 'magic' && this.fieldBytes === 0) return undefined;
    if (this.state === 'magic') return `the data ends with ${this.fieldBytes} stray bytes after frame ${this.frames}`;
    return this.inFrame ? `the data ends inside frame ${this.frames} (truncated)` : 'the data ends inside a skippable frame (truncated)';
  }

  /**
   * The bytes of `chunk` that belong to zstd frames, cut so that no piece holds bytes of two
   * frames. Skippable frames are left out. A frame's magic number comes as a piece of its own.
   * Throws on bytes that cannot be zstd.
   */
  split(chunk: Buffer): Buffer[] {
    const pieces: Buffer[] = [];
    let from = this.inFrame ? 0 : -1;
    let at = 0;
    while (at < chunk.length) {
      const take = Math.min(this.need, chunk.length - at);
      if (this.state !== 'body' && this.state !== 'skip') {
        chunk.copy(this.field, this.fieldBytes, at, at + take);
        this.fieldBytes += take;
      }
      at += take;
      this.offset += take;
      this.need -= take;
      if (this.need > 0) break;
      const field = this.field.subarray(0, this.fieldBytes);
      this.fieldBytes = 0;
      const wasInFrame = this.inFrame;
      this.advance(field);
      if (!wasInFrame && this.inFrame) {
        pieces.push(Buffer.from(field)); // the magic, which may have begun in an earlier chunk
        from = at;
      } else if (wasInFrame && !this.inFrame) {
        if (at > from) pieces.push(chunk.subarray(from, at));
        from = -1;
      }
    }
    if (this.inFrame && from >= 0 && at > from) pieces.push(chunk.subarray(from, at));
    return pieces;
  }

  /** `field` holds the whole of the current state's field (empty for bodies). */
  private advance(field: Buffer): void {
    switch (this.state) {
      case 'magic': {
        const magic = field.readUInt32LE(0);
        if (magic === ZSTD_MAGIC) {
          this.frames++;
          this.inFrame = true;
          return this.expect('descriptor', 1);
        }
        if ((magic & 0xfffffff0) >>> 0 === SKIPPABLE_MAGIC) return this.expect('skipSize', 4);
        throw new Error(`not zstd data at byte ${this.offset - 4} (no frame magic number after frame ${this.frames})`);
      }
      case 'descriptor': {
        const descriptor = field[0]!;
        if (descriptor & 0x08) throw new Error(`corrupt zstd data: frame ${this.frames} has a reserved header bit set`);
        const singleSegment = (descriptor >> 5) & 1;
        this.checksum = ((descriptor >> 2) & 1) === 1;
        const dictionaryId = [0, 1, 2, 4][descriptor & 3]!;
        const contentSize = [singleSegment, 2, 4, 8][descriptor >> 6]!;
        const rest = (singleSegment ? 0 : 1) + dictionaryId + contentSize;
        return rest > 0 ? this.expect('header', rest) : this.expect('block', 3);
      }
      case 'header':
        return this.expect('block', 3);
      case 'block': {
        const header = field.readUIntLE(0, 3);
        this.lastBlock = (header & 1) === 1;
        const type = (header >> 1) & 3;
        if (type === 3) throw new Error(`corrupt zstd data: frame ${this.frames} has a block of the reserved type`);
        const body = type === 1 ? 1 : header >>> 3; // an RLE block is one byte, repeated
        return body > 0 ? this.expect('body', body) : this.afterBlock();
      }
      case 'body':
        return this.afterBlock();
      case 'checksum':
        return this.endFrame();
      case 'skipSize': {
        const size = field.readUInt32LE(0);
        return size > 0 ? this.expect('skip', size) : this.expect('magic', 4);
      }
      case 'skip':
        return this.expect('magic', 4);
    }
  }

  private afterBlock(): void {
    if (!this.lastBlock) return this.expect('block', 3);
    return this.checksum ? this.expect('checksum', 4) : this.endFrame();
  }

  private endFrame(): void {
    this.inFrame = false;
    this.expect('magic', 4);
  }

  private expect(state: ScanState, bytes: number): void {
    this.state = state;
    this.need = bytes;
  }
}

/**
 * zstd decompression through node:zlib, for streams of any number of frames. Node's
 * ZstdDecompress (24.x) ends its output where the first frame ends when one write holds the end
 * of one frame and the start of the next, silently dropping the rest (nodejs/node#64741), and it
 * takes a stream that stops inside a frame as complete (nodejs/node#64592). So the input is cut
 * at frame boundaries (ZstdFrameScanner) before it reaches zlib, and a stream that ends inside
 * a frame is an error. Back-pressure holds both ways: the input waits for zlib, and zlib waits
 * for the reader.
 */
export class ZstdDecompressor extends Duplex {
  private readonly scanner = new ZstdFrameScanner();
  private readonly inner: ZstdDecompress;
  private readonly source: string;

  constructor(source: string, chunkSize: number) {
    super({ readableHighWaterMark: chunkSize });
    this.source = source;
    this.inner = createZstdDecompress({ chunkSize });
    this.inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) this.inner.pause();
    });
    this.inner.on('end', () => this.push(null));
    this.inner.on('error', (error) => this.destroy(this.failure(error.message)));
  }

  private failure(problem: string): Error {
    return new Error(`zstd decompression of ${this.source} failed: ${problem}`);
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    let pieces: Buffer[];
    try {
      pieces = this.scanner.split(chunk);
    } catch (error) {
      return callback(this.failure((error as Error).message));
    }
    let i = 0;
    const writeMore = (): void => {
      while (i < pieces.length) {
        // Each piece is its own zlib write, so no write spans two frames.
        if (!this.inner.write(pieces[i++])) return void this.inner.once('drain', writeMore);
      }
      callback();
    };
    writeMore();
  }

  override _final(callback: (error?: Error | null) => void): void {
    const problem = this.scanner.endProblem();
    if (problem) return callback(this.failure(problem));
    this.inner.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.inner.destroy();
    callback(error);
  }
}
