import { type FileHandle, open } from 'node:fs/promises';

/**
 * Reads `length` bytes at `position` (fewer only at the end of the file), looping over short
 * reads. Takes an open handle, or a path opened and closed around the read.
 */
export async function readAt(file: FileHandle | string, length: number, position: number): Promise<Buffer> {
  if (typeof file === 'string') {
    const handle = await open(file, 'r');
    try {
      return await readAt(handle, length, position);
    } finally {
      await handle.close();
    }
  }
  const buf = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await file.read(buf, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}
