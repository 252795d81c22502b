import { createWriteStream, type WriteStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { Digest } from './digest.js';
import type { PieceProducer } from './inflate-file.js';
import { Sha256Thread } from './sha256-thread.js';

/**
 * Layers and archives are written a MiB at a time. Node's default (16 KiB) makes a 178 MB
 * archive ~10 000 small writes on the thread pool: writing one through the tar writer took
 * 0.95 s against 0.59 s with 1 MiB (measured here). It bounds what is queued, not what is
 * allocated, so memory does not grow with it.
 */
const WRITE_CHUNK = 1 << 20;

/** A write stream for layer-sized files. */
export function createFileWriter(path: string): WriteStream {
  return createWriteStream(path, { highWaterMark: WRITE_CHUNK });
}

/**
 * The error to report for a failed write into `file`: the file's own system error (ENOSPC,
 * ENOENT) when it has one, not what its failure did upstream (a stream written to after the
 * pipeline came down: "Cannot call write after a stream was destroyed").
 */
export function writeFailure(file: WriteStream, error: unknown): unknown {
  const own = file.errored as NodeJS.ErrnoException | null;
  return own?.syscall ? own : error;
}

/**
 * Passes the pieces a producer lends to `write` (with where each goes, counting from 0),
 * hashing them on the hashing thread as they go; each is given back once both are done with it.
 * Resolves with the digest and size of everything written.
 */
export async function writeHashedPieces(
  produce: PieceProducer,
  write: (piece: Buffer, at: number) => Promise<void>,
): Promise<{ digest: Digest; size: number }> {
  const hash = new Sha256Thread();
  let size = 0;
  try {
    await produce(async (piece) => {
      const at = size;
      size += piece.length;
      await Promise.all([hash.update(piece), write(piece, at)]);
    });
    return { digest: (await hash.digest()).digest, size };
  } catch (error) {
    hash.abort();
    throw error;
  }
}

/** Writes the pieces a producer lends into a new file at `path`: the file's digest and size. */
export async function writePieces(path: string, produce: PieceProducer): Promise<{ digest: Digest; size: number }> {
  const file = await open(path, 'w');
  try {
    return await writeHashedPieces(produce, (piece, at) => writeAll(file, piece, at));
  } finally {
    await file.close();
  }
}

/** Writes all of `bytes` at `position` (a write may take fewer). */
export async function writeAll(file: FileHandle, bytes: Buffer, position: number): Promise<void> {
  for (let done = 0; done < bytes.length; ) {
    const { bytesWritten } = await file.write(bytes, done, bytes.length - done, position + done);
    if (bytesWritten === 0) throw new Error(`the file took no bytes`);
    done += bytesWritten;
  }
}
