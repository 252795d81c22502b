import { BLOCK, type EntryType, type RawHeader } from '../tar/header.js';

/**
 * tar/header.ts's decodeHeader, for the delta's scans: the same fields and the same rules (a
 * block whose checksum or numbers do not parse is not a header), read byte by byte instead of
 * through strings and regular expressions, which made header parsing a tenth of an encode.
 */
const SPACE = 0x20;

/** What String.prototype.trim removes, among latin1 bytes (decodeHeader trims numeric fields). */
function blank(byte: number): boolean {
  return byte === SPACE || (byte >= 0x09 && byte <= 0x0d) || byte === 0xa0;
}

/** An octal field (or GNU base-256); undefined when it is not a number. */
function number(block: Buffer, offset: number, length: number): number | undefined {
  if ((block[offset]! & 0x80) !== 0) {
    let value = block[offset]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!;
    return value;
  }
  const end = offset + length;
  let at = offset;
  while (at < end && blank(block[at]!)) at++;
  let value = 0;
  for (; at < end && block[at] !== 0 && !blank(block[at]!); at++) {
    const digit = block[at]! - 0x30;
    if (digit < 0 || digit > 7) return undefined;
    value = value * 8 + digit;
  }
  for (; at < end && block[at] !== 0; at++) if (!blank(block[at]!)) return undefined;
  return value;
}

function text(block: Buffer, offset: number, length: number): string {
  const nul = block.indexOf(0, offset);
  return block.toString('utf8', offset, nul === -1 || nul > offset + length ? offset + length : nul);
}

function typeOf(flag: number): EntryType {
  switch (flag) {
    case 0x30: // '0'
    case 0x00:
    case 0x37: // '7', contiguous
      return 'file';
    case 0x35:
      return 'directory';
    case 0x32:
      return 'symlink';
    case 0x31:
      return 'link';
    default:
      return 'other';
  }
}

export function parseHeader(block: Buffer): RawHeader | undefined {
  if (block.length < BLOCK) return undefined;
  let sum = 8 * SPACE;
  for (let i = 0; i < 148; i++) sum += block[i]!;
  for (let i = 156; i < BLOCK; i++) sum += block[i]!;
  if (number(block, 148, 8) !== sum) return undefined;
  const size = number(block, 124, 12);
  if (size === undefined) return undefined;
  let name = text(block, 0, 100);
  // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar ") uses those bytes for other things.
  if (block[257] === 0x75 && block.toString('latin1', 257, 263) === 'ustar\0') {
    const prefix = text(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const flag = block[156]!;
  return { name, size, type: typeOf(flag), flag: String.fromCharCode(flag), linkname: text(block, 157, 100) };
}
