import { TarFormatError } from '../errors.js';

/**
 * Decoding of 512-byte tar headers (ustar, GNU and PAX forms), for walking a seekable archive
 * without reading the entries' data, and encoding of the plain ustar headers ddiff writes.
 * Streams are read through tar/extract.ts.
 */
export const BLOCK = 512;
/** Two zero blocks end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK);

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'other';

export interface RawHeader {
  name: string;
  size: number;
  type: EntryType;
  /** The raw typeflag: `x`/`g` (PAX) and `L`/`K` (GNU long names) are metadata for the next entry. */
  flag: string;
  linkname: string;
}

function readString(block: Buffer, offset: number, length: number): string {
  const end = block.indexOf(0, offset);
  return block.toString('utf8', offset, end === -1 || end > offset + length ? offset + length : end);
}

function readNumber(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256: big-endian two's complement, first byte's top bit is the marker.
    let value = field[0]! & 0x7f;
    for (let i = 1; i < field.length; i++) value = value * 256 + field[i]!;
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`bad numeric field '${text}'`);
  return parseInt(text, 8);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

function checksumOk(block: Buffer): boolean {
  const stored = readNumber(block, 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum === stored;
}

function typeOf(flag: string): EntryType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '5':
      return 'directory';
    case '2':
      return 'symlink';
    case '1':
      return 'link';
    default:
      return 'other';
  }
}

/** Decodes one header block; throws TarFormatError when it is not a valid tar header. */
export function decodeHeader(block: Buffer): RawHeader {
  if (block.length < BLOCK) throw new TarFormatError('short header block');
  if (!checksumOk(block)) throw new TarFormatError('header checksum mismatch');
  const flag = String.fromCharCode(block[156]!);
  let name = readString(block, 0, 100);
  // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar ") uses those bytes for other things.
  if (block.toString('latin1', 257, 263) === 'ustar\0') {
    const prefix = readString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    size: readNumber(block, 124, 12),
    type: typeOf(flag),
    flag,
    linkname: readString(block, 157, 100),
  };
}

/** Parses PAX extended header records (`<len> key=value\n`). */
export function decodePax(data: Buffer): Record<string, string> {
  const records: Record<string, string> = {};
  let offset = 0;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space === -1) break;
    const length = parseInt(data.toString('latin1', offset, space), 10);
    if (!Number.isFinite(length) || length <= 0 || offset + length > data.length) {
      throw new TarFormatError('bad PAX record');
    }
    const record = data.toString('utf8', space + 1, offset + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) records[record.slice(0, eq)] = record.slice(eq + 1);
    offset += length;
  }
  return records;
}

/** Metadata records (PAX, GNU long names) larger than this are refused as hostile. */
export const MAX_META_RECORD = 1 << 20;

/**
 * The metadata records (PAX `x`, GNU `L`/`K`) that precede an entry and rename or resize it;
 * global PAX records (`g`) carry nothing ddiff needs.
 */
export class EntryMeta {
  private pax: Record<string, string> = {};
  private longName: string | undefined;
  private longLink: string | undefined;

  static isMeta(header: RawHeader): boolean {
    return header.flag === 'x' || header.flag === 'g' || header.flag === 'L' || header.flag === 'K';
  }

  /** Whether records are waiting for their entry. */
  get pending(): boolean {
    return this.longName !== undefined || this.longLink !== undefined || Object.keys(this.pax).length > 0;
  }

  /** The data size of the entry `header` starts, PAX's size first. */
  sizeOf(header: RawHeader): number {
    return !EntryMeta.isMeta(header) && this.pax.size !== undefined ? Number(this.pax.size) : header.size;
  }

  absorb(header: RawHeader, data: Buffer): void {
    if (header.flag === 'x') this.pax = { ...this.pax, ...decodePax(data) };
    else if (header.flag === 'L') this.longName = data.toString('utf8').replace(/\0+$/, '');
    else if (header.flag === 'K') this.longLink = data.toString('utf8').replace(/\0+$/, '');
  }

  /** The entry `header` starts, as its records name it; the records are then used up. */
  take(header: RawHeader): { name: string; linkname: string } {
    const taken = { name: this.pax.path ?? this.longName ?? header.name, linkname: this.pax.linkpath ?? this.longLink ?? header.linkname };
    this.pax = {};
    this.longName = undefined;
    this.longLink = undefined;
    return taken;
  }
}

export function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK;
}

/** An octal field as tar-stream writes it: zero-padded digits, then a space (the field's last byte stays NUL). */
function writeOctal(block: Buffer, offset: number, digits: number, value: number): void {
  block.write(`${value.toString(8).padStart(digits, '0')} `, offset, digits + 1, 'latin1');
}

/**
 * The ustar header of a regular file entry as ddiff writes them (root, 0644, mtime 0), byte for
 * byte as tar-stream encodes it: for entries written in place (tar/file-writer.ts) and entries
 * renamed once their digest is known.
 */
export function encodeFileHeader(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new TarFormatError(`entry name '${name}' is longer than 100 bytes`);
  if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`bad entry size ${size}`);
  const block = Buffer.alloc(BLOCK);
  block.write(name, 0, 100, 'utf8');
  writeOctal(block, 100, 6, 0o644);
  writeOctal(block, 108, 6, 0);
  writeOctal(block, 116, 6, 0);
  if (size < 8 ** 11) writeOctal(block, 124, 11, size);
  else {
    // GNU base-256, as tar-stream writes sizes of 8 GiB and more.
    block[124] = 0x80;
    let rest = size;
    for (let i = 11; i > 0; i--, rest = Math.floor(rest / 256)) block[124 + i] = rest % 256;
  }
  writeOctal(block, 136, 11, 0);
  block.write('0', 156, 1, 'latin1');
  block.write('ustar\u000000', 257, 8, 'latin1');
  block.write('root', 265, 32, 'latin1');
  block.write('root', 297, 32, 'latin1');
  writeOctal(block, 329, 6, 0);
  writeOctal(block, 337, 6, 0);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += block[i]!;
  block.fill(0, 148, 156);
  writeOctal(block, 148, 6, sum);
  return block;
}
