import { TarFormatError } from '../errors.js';
import { open } from 'node:fs/promises';
import { readAt } from '../util/read-at.js';
import { TarTruncatedError } from '../errors.js';
import { BLOCK, decodeHeader, EntryMeta, isZeroBlock, MAX_META_RECORD, paddedSize, type EntryType } from './header.js';

/** An entry of a tar file: where its data starts and how long it is. */
interface TarEntry {
  name: string;
  type: EntryType;
  size: number;
  /** Byte offset of the entry's data in the file. */
  offset: number;
  linkname: string;
}

/**
 * Lists a tar file's entries by reading only their headers and seeking over their data, so
 * the cost does not depend on layer sizes.
 */
export async function indexTarFile(path: string): Promise<TarEntry[]> {
  const handle = await open(path, 'r');
  try {
    const { size: fileSize } = await handle.stat();
    const entries: TarEntry[] = [];
    let position = 0;
    const meta = new EntryMeta();
    for (;;) {
      if (position >= fileSize) {
        if (meta.pending) throw new TarTruncatedError('archive ends inside an entry');
        return entries; // no end-of-archive blocks: accepted, as GNU tar and docker do
      }
      const block = await readAt(handle, BLOCK, position);
      if (block.length < BLOCK) throw new TarTruncatedError(`archive ends inside a header at byte ${position}`);
      if (isZeroBlock(block)) return entries;
      let header;
      try {
        header = decodeHeader(block);
      } catch (error) {
        if (error instanceof TarFormatError) {
          throw new TarFormatError(`not a valid tar archive: ${error.message} in the header at byte ${position}`);
        }
        throw error;
      }
      const isMeta = EntryMeta.isMeta(header);
      const size = meta.sizeOf(header);
      const dataOffset = position + BLOCK;
      if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`entry '${header.name}' has a bad size`);
      if (dataOffset + size > fileSize) {
        throw new TarTruncatedError(
          `archive is truncated: entry '${header.name}' needs ${size} bytes at offset ${dataOffset}, the file has ${fileSize}`,
        );
      }
      position = dataOffset + paddedSize(size);
      if (isMeta) {
        if (header.size > MAX_META_RECORD) throw new TarFormatError(`metadata record of ${header.size} bytes`);
        meta.absorb(header, await readAt(handle, header.size, dataOffset));
        continue;
      }
      entries.push({ ...meta.take(header), type: header.type, size, offset: dataOffset });
    }
  } finally {
    await handle.close();
  }
}
