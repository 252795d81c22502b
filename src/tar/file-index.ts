import { TarFormatError } from '../errors.js';
import { open } from 'node:fs/promises';
import { readAt } from '../util/read-at.js';
import { TarTruncatedError } from '../errors.js';
import { BLOCK, decodeHeader, decodePax, isZeroBlock, paddedSize, type EntryType } from './header.js';

/** An entry of a tar file: where its data starts and how long it is. */
interface TarEntry {
  name: string;
  type: EntryType;
  size: number;
  /** Byte offset of the entry's data in the file. */
  offset: number;
  linkname: string;
}

/** Metadata records (PAX, GNU long names) larger than this are refused as hostile. */
const MAX_META_RECORD = 1 << 20;

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
    let pax: Record<string, string> = {};
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      if (position >= fileSize) {
        if (longName !== undefined || Object.keys(pax).length > 0) {
          throw new TarTruncatedError('archive ends inside an entry');
        }
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
      const isMeta = header.flag === 'x' || header.flag === 'g' || header.flag === 'L' || header.flag === 'K';
      const size = !isMeta && pax.size !== undefined ? Number(pax.size) : header.size;
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
        const data = await readAt(handle, header.size, dataOffset);
        if (header.flag === 'x') pax = { ...pax, ...decodePax(data) };
        else if (header.flag === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
        else if (header.flag === 'K') longLink = data.toString('utf8').replace(/\0+$/, '');
        continue; // global PAX headers ('g') carry nothing ddiff needs
      }
      entries.push({
        name: pax.path ?? longName ?? header.name,
        type: header.type,
        size,
        offset: dataOffset,
        linkname: pax.linkpath ?? longLink ?? header.linkname,
      });
      pax = {};
      longName = undefined;
      longLink = undefined;
    }
  } finally {
    await handle.close();
  }
}
