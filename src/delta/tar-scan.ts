import { posix } from 'node:path';
import { TarFormatError, TarTruncatedError } from '../errors.js';
import { BLOCK, decodePax, paddedSize } from '../tar/header.js';
import type { ChunkReader } from './chunk-reader.js';
import { parseHeader } from './header.js';

/**
 * Splits a layer tar into the pieces a delta treats differently: regular files' contents, and
 * everything else as raw bytes (headers, PAX / GNU long-name records, padding, other entries'
 * data, end-of-archive and whatever follows it). Concatenating the pieces in order gives back
 * the input exactly, whatever it holds: from the first block that is not a valid header (or the
 * first zero block) on, the rest is one raw run, so odd archives cost size, never correctness.
 */
type TarPiece =
  | { kind: 'raw'; data: Buffer }
  | { kind: 'file'; path: string; size: number; offset: number; content: FileContent }
  | { kind: 'link'; path: string; target: string };

/** A file's content, read in chunks before the scan goes on; what is left unread is skipped. */
export interface FileContent {
  /** The next chunk of at most `max` bytes; empty when the content is all read. */
  next(max: number): Promise<Buffer>;
  /** All of it, as the chunks it came in (callers only do this for files they have bounded). */
  parts(): Promise<Buffer[]>;
}

/** Metadata records larger than this are not parsed: the rest of the archive goes raw. */
const MAX_META = 1 << 20;
const RAW_PIECE = 1 << 20;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** The name a file is matched by: no leading `/` or `./`. */
function pathKey(name: string): string {
  let key = name.replace(/^(?:\.?\/)+/, '').replace(/\/+$/, '');
  // posix.normalize costs more than the rest of a header's parsing; most names need none.
  if (/(?:^|\/)\.{1,2}(?:\/|$)|\/\//.test(key)) key = posix.normalize(key);
  return key === '.' ? '' : key;
}

export async function* scanTar(reader: ChunkReader): AsyncGenerator<TarPiece> {
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await reader.readUpTo(BLOCK);
    if (block.length === 0) return;
    const header = block.length === BLOCK && !block.equals(ZERO_BLOCK) ? parseHeader(block) : undefined;
    if (header === undefined) {
      yield { kind: 'raw', data: block };
      yield* rest(reader);
      return;
    }
    const isMeta = header.flag === 'x' || header.flag === 'g' || header.flag === 'L' || header.flag === 'K';
    if (isMeta) {
      if (header.size > MAX_META) {
        yield { kind: 'raw', data: block };
        yield* rest(reader);
        return;
      }
      const data = await reader.readUpTo(paddedSize(header.size));
      yield { kind: 'raw', data: Buffer.concat([block, data]) };
      if (data.length < paddedSize(header.size)) return;
      const body = data.subarray(0, header.size);
      try {
        if (header.flag === 'x') pax = { ...pax, ...decodePax(body) };
      } catch (error) {
        if (!(error instanceof TarFormatError)) throw error;
        yield* rest(reader);
        return;
      }
      if (header.flag === 'L') longName = body.toString('utf8').replace(/\0+$/, '');
      if (header.flag === 'K') longLink = body.toString('utf8').replace(/\0+$/, '');
      continue;
    }
    const size = pax.size !== undefined ? Number(pax.size) : header.size;
    if (!Number.isSafeInteger(size) || size < 0) {
      yield { kind: 'raw', data: block };
      yield* rest(reader);
      return;
    }
    const path = pathKey(pax.path ?? longName ?? header.name);
    const linkname = pax.linkpath ?? longLink ?? header.linkname;
    pax = {};
    longName = undefined;
    longLink = undefined;
    yield { kind: 'raw', data: block };
    if (header.type === 'link') yield { kind: 'link', path, target: pathKey(linkname) };
    if (header.type === 'file' && size > 0) {
      const offset = reader.position;
      let left = size;
      const content: FileContent = {
        next: async (max) => {
          if (left === 0) return Buffer.alloc(0);
          const chunk = await reader.next(Math.min(max, left));
          if (chunk.length === 0) throw new TarTruncatedError(`archive ends inside the content of '${path}'`);
          left -= chunk.length;
          return chunk;
        },
        parts: async () => {
          const parts: Buffer[] = [];
          while (left > 0) parts.push(await content.next(left));
          return parts;
        },
      };
      yield { kind: 'file', path, size, offset, content };
      const unread = left;
      left = 0;
      if (unread > 0 && (await reader.skip(unread)) < unread) throw new TarTruncatedError(`archive ends inside the content of '${path}'`);
    } else {
      for (let left = size; left > 0; ) {
        const chunk = await reader.next(Math.min(left, RAW_PIECE));
        if (chunk.length === 0) return;
        left -= chunk.length;
        yield { kind: 'raw', data: chunk };
      }
    }
    const padding = await reader.readUpTo(paddedSize(size) - size);
    if (padding.length > 0) yield { kind: 'raw', data: padding };
  }
}

async function* rest(reader: ChunkReader): AsyncGenerator<TarPiece> {
  for (;;) {
    const chunk = await reader.next(RAW_PIECE);
    if (chunk.length === 0) return;
    yield { kind: 'raw', data: chunk };
  }
}
