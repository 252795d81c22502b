import { constants, type Gzip, type ZlibReset } from 'node:zlib';
import type { CompressMethod, Engine } from './compress.js';

/** Where node:zlib's streams put their next output (lib/zlib.js: processChunk, processCallback). */
interface OutputFields {
  _outBuffer?: Buffer;
  _outOffset?: number;
  _chunkSize?: number;
}

/** Room for the output of a piece of `size` bytes that does not compress: above zstd's and deflate's bounds. */
export function outputBound(size: number): number {
  return size + (size >> 7) + (64 << 10);
}

/**
 * Compresses `input` as one gzip member or zstd frame into `out`, a buffer the caller uses again
 * once it has written the result: no fresh memory for the output. node:zlib's streams give every
 * MiB of output a fresh Buffer, and first-touched memory is dear on this kind of VM
 * (util/buffer-pool.ts): 268 MB at zstd -3 on two cores took 2.05 s of CPU and 32.7k page faults
 * through the stream, 1.44 s and 11.6k into reused buffers (`zstd -3 -T0`: 1.55 s). No public API
 * takes an output buffer, so the stream's own fields for it are set before the piece, as
 * ZstdInto reaches the handle under a stream. Where they are not there, or the output outgrows
 * `out`, the result is the chunks the stream gave, joined: slower, never wrong.
 */
export function compressInto(engine: Engine, method: CompressMethod, input: Buffer, out: Buffer): Promise<Buffer> {
  const fields = engine as unknown as OutputFields;
  fields._outBuffer = out;
  fields._outOffset = 0;
  fields._chunkSize = out.length;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let inOut = true;
    const onData = (chunk: Buffer) => {
      if (chunk.buffer !== out.buffer || chunk.byteOffset !== out.byteOffset + length) inOut = false;
      chunks.push(chunk);
      length += chunk.length;
    };
    const onError = (error: Error) => {
      engine.off('data', onData);
      reject(error);
    };
    engine.on('data', onData).once('error', onError);
    engine.write(input);
    engine.flush(method === 'zstd' ? constants.ZSTD_e_end : constants.Z_FINISH, () => {
      // Output pushed while the stream's reader was busy waits in its buffer: read out as 'data'.
      while (engine.readableLength > 0 && engine.read() !== null);
      engine.off('data', onData).off('error', onError);
      if (engine.destroyed) return reject(new Error('compression stopped: the compressor was destroyed'));
      if (method === 'gzip') (engine as Gzip & ZlibReset).reset();
      resolve(inOut ? out.subarray(0, length) : Buffer.concat(chunks, length));
    });
  });
}
