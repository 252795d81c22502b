// Parallel, streaming gzip and zstd for bundle layers. Longer than most modules because the
// slots, the reused compressors and the in-order hand-on of pieces are one mechanism.
import { availableParallelism } from 'node:os';
import { Duplex } from 'node:stream';
import { constants, createGzip, createZstdCompress, type Gzip, type ZlibReset, type ZstdCompress } from 'node:zlib';
import pLimit from 'p-limit';

export type CompressMethod = 'gzip' | 'zstd';

export const DEFAULT_LEVELS = { gzip: 6, zstd: 3 } as const;

/**
 * Input bytes per independently compressed piece (gzip member, zstd frame). gzip's window is
 * 32 KiB, so 1 MiB members cost under 0.1 %. zstd -3 looks back 2 MiB: on a 603 MB tar of
 * /usr/share, frames of 1 MiB came out 3.5 % larger than one frame, 4 MiB 0.6 %, 8 MiB 0.05 %
 * (0.04 % larger than `zstd -3 -T0`, whose jobs share history).
 */
export const PIECE_BYTES: Record<CompressMethod, number> = { gzip: 1 << 20, zstd: 8 << 20 };

const CORES = Math.max(1, availableParallelism());

/**
 * Pieces under way at once across every stream of the process: one per core, but at most 64 MiB
 * of input (8 zstd pieces), which bounds memory on big hosts. A piece takes a slot when its
 * first byte comes and gives it back once its output is handed on: it holds at most PIECE_BYTES
 * of input not yet compressed, and its output until the pieces before it are done.
 */
const HELD_INPUT = 64 << 20;
const slots: Record<CompressMethod, ReturnType<typeof pLimit>> = {
  gzip: pLimit(Math.max(1, Math.min(CORES, HELD_INPUT / PIECE_BYTES.gzip))),
  zstd: pLimit(Math.max(1, Math.min(CORES, HELD_INPUT / PIECE_BYTES.zstd))),
};

/** A place among the pieces under way in the process; the function given back releases it. */
export function takeSlot(method: CompressMethod): Promise<() => void> {
  return new Promise((granted) => {
    slots[method](() => new Promise<void>((release) => granted(release))).catch(() => undefined);
  });
}

/** zlib output buffers: few thread-pool round trips per piece. */
const OUTPUT_CHUNK = 1 << 20;

export type Engine = Gzip | ZstdCompress;

/** Compressors whose output goes to node:zlib's own buffers (streams), or to the caller's (compress-into.ts): never mixed. */
type Use = 'stream' | 'lent';

/**
 * Compressors are kept and reused: a piece is written to one, then ended as a gzip member
 * (Z_FINISH, then reset) or a zstd frame (ZSTD_e_end; the next write starts a new frame).
 * A new zstd context per piece (a few MB each, allocated on the thread pool) cost 20-40 MB of RSS.
 */
const idle = new Map<string, Engine[]>();

export function takeEngine(method: CompressMethod, level: number, use: Use = 'stream'): Engine {
  const kept = idle.get(`${method}-${level}-${use}`)?.pop();
  if (kept) return kept;
  if (method === 'gzip') return createGzip({ level, chunkSize: OUTPUT_CHUNK });
  return createZstdCompress({
    chunkSize: OUTPUT_CHUNK,
    params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 },
  });
}

export function giveEngine(method: CompressMethod, level: number, engine: Engine, use: Use = 'stream'): void {
  const key = `${method}-${level}-${use}`;
  const engines = idle.get(key) ?? [];
  idle.set(key, engines);
  if (engines.length < CORES) engines.push(engine);
  else engine.destroy();
}

/** One piece: its compressor, and its output while an earlier piece is still under way. */
interface Piece {
  engine: Engine;
  release: () => void;
  output: Buffer[];
  /** Its input buffers, kept only for the `released` hook. */
  inputs: Buffer[];
  /** Its member or frame is complete. */
  done: boolean;
  onData: (chunk: Buffer) => void;
  onError: (error: Error) => void;
}

/**
 * Compresses a stream on every core, like pigz: the input is cut into pieces of PIECE_BYTES,
 * each compressed on its own by node:zlib on libuv's thread pool, and the output written in
 * order. Concatenated gzip members are one gzip stream (RFC 1952 §2.2) and concatenated zstd
 * frames one zstd stream (RFC 8878 §3.1): `gzip -d`, `zstd -d`, Go's readers (Docker,
 * containerd, containers/storage) and ddiff's own `decompressor` read them whole.
 *
 * Streaming and flat in memory: input is handed to the piece's compressor as it comes (no copy),
 * the oldest piece's output goes on as it comes, and a new piece starts only when a slot is free
 * and the reader has taken what was written. Note that a piece being filled holds its slot:
 * compressors whose inputs wait on one another's output could starve each other.
 */
export class ParallelCompressor extends Duplex {
  private readonly method: CompressMethod;
  private readonly level: number;
  private readonly pieceBytes: number;
  /** Pieces not yet handed on, oldest first; the last may be the one being filled. */
  private readonly pieces: Piece[] = [];
  private filling: Piece | undefined;
  private filled = 0;
  private started = 0;
  /** Called when the reader takes output, or when the last piece has been handed on. */
  private wake: (() => void) | undefined;
  private readonly released: ((input: Buffer) => void) | undefined;

  /**
   * `released`, when given, gets back each buffer written once its piece is compressed, so the
   * writer may reuse it (compressFileRange). It is the buffer written when writes are whole
   * pieces; a write spanning pieces comes back as its parts.
   */
  constructor(
    method: CompressMethod,
    level: number = DEFAULT_LEVELS[method],
    pieceBytes = PIECE_BYTES[method],
    released?: (input: Buffer) => void,
  ) {
    super({ readableHighWaterMark: OUTPUT_CHUNK });
    this.method = method;
    this.level = level;
    this.pieceBytes = pieceBytes;
    this.released = released;
  }

  private waitForWake(): Promise<void> {
    return new Promise((resolve) => (this.wake = resolve));
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async startPiece(): Promise<Piece> {
    while (this.readableLength >= this.readableHighWaterMark && !this.destroyed) await this.waitForWake();
    const release = await takeSlot(this.method);
    if (this.destroyed) {
      release();
      throw new Error('compression stopped: the stream was destroyed');
    }
    const engine = takeEngine(this.method, this.level);
    const piece: Piece = {
      engine,
      release,
      output: [],
      inputs: [],
      done: false,
      onData: (chunk) => {
        if (piece === this.pieces[0]) this.push(chunk);
        else piece.output.push(chunk);
      },
      onError: (error) => this.destroy(error),
    };
    engine.on('data', piece.onData).on('error', piece.onError);
    this.pieces.push(piece);
    this.started++;
    return piece;
  }

  /** Ends the piece's member or frame; once done, the pieces complete at the front go on. */
  private endPiece(piece: Piece): void {
    const finish = () => {
      // Output zlib pushed while its reader was busy waits in its buffer: read it out now (in
      // flowing mode read() emits it as 'data'), so none is left behind when the piece goes on.
      while (piece.engine.readableLength > 0 && piece.engine.read() !== null);
      piece.done = true;
      for (const input of piece.inputs.splice(0)) this.released?.(input);
      this.handOn();
    };
    if (this.method === 'zstd') piece.engine.flush(constants.ZSTD_e_end, finish);
    else
      piece.engine.flush(constants.Z_FINISH, () => {
        if (!piece.engine.destroyed) (piece.engine as Gzip & ZlibReset).reset();
        finish();
      });
  }

  private handOn(): void {
    while (this.pieces[0]?.done && !this.destroyed) {
      const piece = this.pieces.shift()!;
      piece.engine.off('data', piece.onData).off('error', piece.onError);
      giveEngine(this.method, this.level, piece.engine);
      piece.release();
      const next = this.pieces[0];
      if (next) {
        for (const chunk of next.output) this.push(chunk);
        next.output = [];
      }
    }
    if (this.pieces.length === 0) this.wakeUp();
  }

  override _write(data: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const work = async () => {
      let offset = 0;
      while (offset < data.length) {
        this.filling ??= await this.startPiece();
        const take = Math.min(this.pieceBytes - this.filled, data.length - offset);
        // Past the compressor's own buffer limit on purpose: a piece must take all its input
        // for the next one to start on another core. PIECE_BYTES bounds what it holds.
        const input = take === data.length ? data : data.subarray(offset, offset + take);
        this.filling.engine.write(input);
        if (this.released) this.filling.inputs.push(input);
        offset += take;
        this.filled += take;
        if (this.filled === this.pieceBytes) {
          this.endPiece(this.filling);
          this.filling = undefined;
          this.filled = 0;
        }
      }
    };
    work().then(() => callback(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const work = async () => {
      // An empty input still gets one (empty) member or frame: a valid compressed stream.
      if (!this.filling && this.started === 0) this.filling = await this.startPiece();
      if (this.filling) this.endPiece(this.filling);
      this.filling = undefined;
      while (this.pieces.length > 0 && !this.destroyed) await this.waitForWake();
      if (this.destroyed) throw new Error('compression stopped: the stream was destroyed');
      this.push(null);
    };
    work().then(() => callback(), callback);
  }

  override _read(): void {
    this.wakeUp();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    // Compressors in an unknown state are not reused; a write in progress finishes first.
    for (const piece of this.pieces.splice(0)) {
      piece.engine.off('data', piece.onData).off('error', piece.onError);
      piece.engine.on('error', () => undefined);
      piece.engine.destroy();
      piece.release();
    }
    this.filling = undefined;
    this.wakeUp();
    callback(error);
  }
}

/** The compressing stream for bundle layers. */
export function compressor(method: CompressMethod, level: number = DEFAULT_LEVELS[method]): Duplex {
  return new ParallelCompressor(method, level);
}
