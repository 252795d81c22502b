import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { ArchiveError, DdiffError } from '../errors.js';
import { decompressor, detectCompression } from '../util/compression.js';
import { BLOCK, decodeHeader, isZeroBlock } from '../tar/header.js';
import type { Catalog } from './catalog.js';
import { DirectoryCatalog } from './directory-catalog.js';
import { StreamCatalog } from './stream-catalog.js';
import { TarFileCatalog } from './tar-file-catalog.js';

async function readHead(path: string): Promise<Buffer> {
  const handle = await open(path, 'r');
  try {
    const buf = Buffer.alloc(BLOCK);
    const { bytesRead } = await handle.read(buf, 0, BLOCK, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
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

/** Peeks at the first bytes of a stream without losing them. */
async function peek(input: Readable): Promise<{ head: Buffer; stream: Readable }> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of input) {
    chunks.push(chunk as Buffer);
    length += (chunk as Buffer).length;
    if (length >= BLOCK) break;
  }
  const head = Buffer.concat(chunks);
  async function* rest(): AsyncGenerator<Buffer> {
    yield head;
    for await (const chunk of input) yield chunk as Buffer;
  }
  return { head, stream: Readable.from(rest()) };
}

/**
 * Opens an image archive: a tar file (read by seeking), a compressed tar file or a stream
 * (read once), or a directory holding an image layout. `-` is standard input.
 */
export async function openArchive(input: string, stdin: Readable = process.stdin): Promise<Catalog> {
  if (input === '-') {
    const { head, stream } = await peek(stdin);
    if (head.length === 0) throw new ArchiveError('<stdin>', 'input is empty');
    return scanStream(stream, '<stdin>', head);
  }
  let info;
  try {
    info = await stat(input);
  } catch (error) {
    throw new ArchiveError(input, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (error as Error).message);
  }
  if (info.isDirectory()) return DirectoryCatalog.open(input);
  const head = await readHead(input);
  if (head.length === 0) throw new ArchiveError(input, 'file is empty');
  const compression = detectCompression(head);
  if (compression !== 'none') return scanStream(createReadStream(input, { highWaterMark: 1 << 20 }), input, head);
  checkTarHead(input, head);
  try {
    return await TarFileCatalog.open(input);
  } catch (error) {
    if (error instanceof DdiffError) throw error;
    throw new ArchiveError(input, (error as Error).message, { cause: error });
  }
}
