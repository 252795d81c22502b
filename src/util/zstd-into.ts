import { constants, createZstdDecompress } from 'node:zlib';

/** The native handle under node:zlib's streams: it decodes into whatever output buffer it is given. */
interface NativeHandle {
  writeSync(flush: number, input: Buffer, inOffset: number, inLength: number, out: Buffer, outOffset: number, outLength: number): void;
  onerror: (message: unknown, ...rest: unknown[]) => void;
  close(): void;
}

/**
 * zstd decoding into the caller's buffers, one call at a time on the calling thread. node:zlib's
 * streams give every chunk of output a fresh Buffer, and fresh memory is what inflating costs on
 * this kind of VM: a 204 MB layer took 0.8-1.1 s through the stream, 0.21 s (the `zstd` CLI's
 * 0.26 s) decoded into one reused buffer. There is no public API for that, so this reaches the
 * handle under the stream, as minizlib (node-tar's) does: `_handle.writeSync` and
 * `_writeState`, unchanged since Node 10. `open` returns undefined where they are not there, and
 * callers then use the stream (util/compression.ts).
 *
 * It decodes any number of frames and skips skippable ones; like the stream, it takes input
 * that stops inside a frame as complete, so callers scan frame bounds (ZstdFrameScanner).
 */
export class ZstdInto {
  private failure: string | undefined;

  private constructor(
    private readonly handle: NativeHandle,
    /** [output bytes left unused, input bytes left unread] after each call. */
    private readonly state: Uint32Array,
  ) {
    handle.onerror = (message) => {
      this.failure = String(message);
    };
  }

  static open(): ZstdInto | undefined {
    const stream = createZstdDecompress() as unknown as { _handle?: Partial<NativeHandle>; _writeState?: unknown; destroy(): void };
    const handle = stream._handle;
    const state = stream._writeState;
    if (typeof handle?.writeSync !== 'function' || typeof handle.close !== 'function' || !(state instanceof Uint32Array)) {
      stream.destroy();
      return undefined;
    }
    return new ZstdInto(handle as NativeHandle, state);
  }

  /**
   * Decodes from `input` into `out` from `at` until one of them is used up (or a frame ends):
   * how many input bytes it took and how many output bytes it wrote. Throws on data that is not
   * zstd.
   */
  decode(input: Buffer, out: Buffer, at: number): { read: number; wrote: number } {
    this.handle.writeSync(constants.ZSTD_e_continue, input, 0, input.length, out, at, out.length - at);
    if (this.failure !== undefined) throw new Error(this.failure);
    return { read: input.length - this.state[1]!, wrote: out.length - at - this.state[0]! };
  }

  close(): void {
    this.handle.close();
  }
}
