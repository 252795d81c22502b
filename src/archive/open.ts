import { createReadStream } from 'node:fs';
import { createFileWriter } from '../util/write-file.js';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { ArchiveError, DdiffError } from '../errors.js';
import { decompressor, detectCompression } from '../util/compression.js';
import { BLOCK, decodeHeader, isZeroBlock } from '../tar/header.js';
import type { Catalog } from './catalog.js';
import { readAt } from '../util/read-at.js';
import { DirectoryCatalog } from './directory-catalog.js';
import { StreamCatalog } from './stream-catalog.js';
import { TarFileCatalog } from './tar-file-catalog.js';

function readHead(path: string): Promise<Buffer> {
  return readAt(path, BLOCK, 0);
}

function checkTarHead(source: string, head: Buffer): void {
  if (head.length === 0) throw new ArchiveError(source, 'file is empty');
  if (head.length < BLOCK) throw new ArchiveError(source, 'not a tar archive (shorter than one tar block)');
  if (isZeroBlock(head)) return; // an empty tar: reported later as "not an image archive"
  try {
    decodeHeader(head);
  } catch {
    throw new ArchiveError(source, 'not a tar archive (no valid tar header at the start)');
  }
}

/** Reads a stream that may be compressed as a whole (gzip, zstd, bzip2, xz), once. */
async function scanStream(input: Readable, source: string, head: Buffer): Promise<Catalog> {
  const compression = detectCompression(head);
  if (compression === 'none') return StreamCatalog.scan(input, source);
  const inflate = decompressor(compression, source);
  input.on('error', (error) => inflate.destroy(error));
  return StreamCatalog.scan(input.pipe(inflate), `${source} (${compression})`);
}

/** Reads the first bytes of a stream and puts them back, so the stream is still whole. */
async function peek(input: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  while (length < BLOCK) {
    const chunk = input.read() as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      length += chunk.length;
      continue;
    }
    if (input.readableEnded || input.destroyed) break;
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        input.off('readable', done);
        input.off('end', done);
        input.off('error', fail);
        resolve();
      };
      const fail = (error: Error) => {
        input.off('readable', done);
        input.off('end', done);
        reject(error);
      };
      input.once('readable', done);
      input.once('end', done);
      input.once('error', fail);
    });
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) input.unshift(head);
  return head;
}

/** A plain tar file, indexed by seeking; `source` names it in messages. */
async function openTarFile(path: string, source: string, head: Buffer): Promise<Catalog> {
  checkTarHead(source, head);
  try {
    return await TarFileCatalog.open(path, source);
  } catch (error) {
    if (error instanceof DdiffError) throw error;
    throw new ArchiveError(source, (error as Error).message, { cause: error });
  }
}

/**
 * Opens an archive so that its entries can be read more than once: files and directories as
 * they are; a compressed file or stdin is first decompressed into a file under `spoolDir`.
 */
export async function openSeekableArchive(
  input: string,
  spoolDir: string,
  stdin: Readable = process.stdin,
  /** The user's name for it, when `input` is a file ddiff made (an engine's save). */
  name?: string,
): Promise<Catalog> {
  const source = name ?? (input === '-' ? '<stdin>' : input);
  if (input !== '-') {
    const info = await stat(input).catch(() => undefined);
    const head = info?.isFile() ? await readHead(input) : undefined;
    if (head !== undefined && head.length > 0 && detectCompression(head) === 'none') return openTarFile(input, source, head);
    // Directories, empty or missing files: as openArchive takes (and reports) them.
    if (head === undefined || head.length === 0) return openArchive(input);
  }
  const raw = input === '-' ? stdin : createReadStream(input, { highWaterMark: 1 << 20 });
  const head = await peek(raw);
  if (head.length === 0) throw new ArchiveError(source, 'input is empty');
  const compression = detectCompression(head);
  const spool = join(spoolDir, `spool-${Date.now()}-${Math.random().toString(16).slice(2)}.tar`);
  try {
    await pipeline(raw, decompressor(compression, source), createFileWriter(spool));
  } catch (error) {
    if (error instanceof DdiffError) throw error;
    throw new ArchiveError(source, `cannot read ${compression === 'none' ? '' : `${compression} `}data: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return openTarFile(spool, source, await readHead(spool));
}

/**
 * Opens an image archive: a tar file (read by seeking), a compressed tar file or a stream
 * (read once), or a directory holding an image layout. `-` is standard input.
 */
export async function openArchive(input: string, stdin: Readable = process.stdin): Promise<Catalog> {
  if (input === '-') {
    const head = await peek(stdin);
    if (head.length === 0) throw new ArchiveError('<stdin>', 'input is empty');
    return scanStream(stdin, '<stdin>', head);
  }
  let info;
  try {
    info = await stat(input);
  } catch (error) {
    throw new ArchiveError(
      input,
      (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message,
    );
  }
  if (info.isDirectory()) return DirectoryCatalog.open(input);
  const head = await readHead(input);
  if (head.length === 0) throw new ArchiveError(input, 'file is empty');
  if (detectCompression(head) !== 'none') return scanStream(createReadStream(input, { highWaterMark: 1 << 20 }), input, head);
  return openTarFile(input, input, head);
}
