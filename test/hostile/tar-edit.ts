/**
 * Reading, editing and re-packing small tar archives in memory, for building hostile inputs from
 * good ones: the entries of a fixture, a byte flipped at a known place, a JSON entry rewritten, a
 * header field corrupted (with or without a fixed checksum).
 */
import { createHash } from 'node:crypto';
import { makeTar, type TarFile } from '../helpers/tar.js';

export const BLOCK = 512;

export interface RawEntry {
  name: string;
  type: 'file' | 'symlink' | 'link' | 'directory' | 'other';
  linkname: string;
  size: number;
  /** Offset of the entry's (last) header block. */
  headerOffset: number;
  /** Offset of the entry's data. */
  dataOffset: number;
}

function field(block: Buffer, start: number, length: number): string {
  const raw = block.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

function typeOf(flag: string): RawEntry['type'] {
  if (flag === '0' || flag === '\0' || flag === '7') return 'file';
  if (flag === '2') return 'symlink';
  if (flag === '1') return 'link';
  if (flag === '5') return 'directory';
  return 'other';
}

/** The entries of an uncompressed ustar/PAX/GNU tar, with where their headers and data are. */
export function tarEntries(tar: Buffer): RawEntry[] {
  const entries: RawEntry[] = [];
  let pos = 0;
  let longName: string | undefined;
  let longLink: string | undefined;
  while (pos + BLOCK <= tar.length) {
    const header = tar.subarray(pos, pos + BLOCK);
    if (header.every((b) => b === 0)) break;
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const flag = String.fromCharCode(header[156]!);
    const prefix = header.toString('latin1', 257, 263) === 'ustar\0' ? field(header, 345, 155) : '';
    const dataOffset = pos + BLOCK;
    const data = tar.subarray(dataOffset, dataOffset + size);
    if (flag === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
    else if (flag === 'K') longLink = data.toString('utf8').replace(/\0+$/, '');
    else if (flag === 'x') {
      const text = data.toString('utf8');
      longName = /\d+ path=([^\n]*)\n/.exec(text)?.[1] ?? longName;
      longLink = /\d+ linkpath=([^\n]*)\n/.exec(text)?.[1] ?? longLink;
    } else if (flag !== 'g') {
      entries.push({
        name: longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100)),
        type: typeOf(flag),
        linkname: longLink ?? field(header, 157, 100),
        size,
        headerOffset: pos,
        dataOffset,
      });
      longName = undefined;
      longLink = undefined;
    }
    pos = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
  }
  return entries;
}

/** Offset just past the last entry's data: where the end-of-archive blocks start. */
export function endOfEntries(tar: Buffer): number {
  const last = tarEntries(tar).at(-1);
  return last ? last.dataOffset + Math.ceil(last.size / BLOCK) * BLOCK : 0;
}

/** The entries of a tar as files for `makeTar` (contents copied), to edit and re-pack. */
export function tarFiles(tar: Buffer): TarFile[] {
  return tarEntries(tar).map((e) => {
    const type = e.type === 'other' ? 'file' : e.type;
    const file: TarFile = { name: e.name, type };
    if (type === 'file') file.content = Buffer.from(tar.subarray(e.dataOffset, e.dataOffset + e.size));
    if (type === 'symlink' || type === 'link') file.linkname = e.linkname;
    return file;
  });
}

export function entry(tar: Buffer, match: string | RegExp): RawEntry {
  const found = tarEntries(tar).find((e) => (typeof match === 'string' ? e.name === match : match.test(e.name)));
  if (!found) throw new Error(`no entry ${String(match)} in the archive`);
  return found;
}

export function entryData(tar: Buffer, match: string | RegExp): Buffer {
  const e = entry(tar, match);
  return Buffer.from(tar.subarray(e.dataOffset, e.dataOffset + e.size));
}

/** A copy of `tar` with the byte at `offset` XOR-ed with `mask`. */
export function flipByte(tar: Buffer, offset: number, mask = 0x01): Buffer {
  const copy = Buffer.from(tar);
  copy[offset] = copy[offset]! ^ mask;
  return copy;
}

/** A copy of `tar` with a byte flipped inside the data of entry `match`, at `at` (default: the middle). */
export function flipInEntry(tar: Buffer, match: string | RegExp, at?: number, mask = 0x01): Buffer {
  const e = entry(tar, match);
  return flipByte(tar, e.dataOffset + (at ?? e.size >> 1), mask);
}

/** Recomputes the checksum of the header block at `offset` (in place), so edits reach the parser. */
export function fixChecksum(tar: Buffer, offset: number): void {
  const header = tar.subarray(offset, offset + BLOCK);
  header.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
}

/** A copy of `tar` with `bytes` written into the header at `headerOffset + at`, checksum fixed or not. */
export function patchHeader(tar: Buffer, headerOffset: number, at: number, bytes: Buffer, fix = true): Buffer {
  const copy = Buffer.from(tar);
  bytes.copy(copy, headerOffset + at);
  if (fix) fixChecksum(copy, headerOffset);
  return copy;
}

/** Re-packs `tar` with its entries edited by `edit` (which may add, drop, reorder or change them). */
export async function repack(tar: Buffer, edit: (files: TarFile[]) => TarFile[] | void): Promise<Buffer> {
  const files = tarFiles(tar);
  return makeTar(edit(files) ?? files);
}

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
