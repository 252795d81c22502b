import zlib from 'node:zlib';
import { ChunkReader } from './chunk-reader.js';
import { BaseFileIndex } from './base-index.js';
import { DeltaFormatError } from './errors.js';
import { CHUNK, unzigzag, varints, zigzag } from './format.js';
import { RecordReader } from './record-reader.js';

/**
 * The compact form of a hashed BaseFileIndex, for a have-list: what the offline host's base
 * holds, per layer, so the connected host can refer to identical files without the base's
 * bytes (binary deltas still need them). Per layer: diffID, tar size, and per file in tar
 * order its size, offset and sha256, and for a file larger than CHUNK the sha256 of each
 * CHUNK-sized piece (so a big file the target shares is copied piece by piece, even changed
 * in places). Paths are left out: only binary deltas use them. ~40 bytes a file, plus 32 per
 * MiB of big files, zstd-compressed.
 *
 *   "DDIX", version (u8, 2), three zero bytes, then zstd of:
 *   layers; per layer: 32-byte diffID, tar size, files; per file: size, zigzag offset delta,
 *   32-byte sha256, and if size > CHUNK ceil(size / CHUNK) × 32-byte piece sha256
 *   (hardlinks share their target's earlier offset)
 *
 * Version 1 (no piece hashes) was never written by a released command.
 */
const MAGIC = Buffer.from('DDIX', 'latin1');
const VERSION = 2;
const MAX_LAYERS = 1 << 16;
const MAX_FILES = 1 << 24;

export function serializeIndex(index: BaseFileIndex): Buffer {
  if (!index.hashed) throw new Error('only an index built with hash: true can be serialized');
  const parts: Buffer[] = [varints(index.layers.length)];
  for (const layer of index.layers) {
    parts.push(Buffer.from(layer.diffId.slice('sha256:'.length), 'hex'), varints(layer.size, layer.files.length));
    let offset = 0;
    for (const file of layer.files) {
      parts.push(varints(file.size, zigzag(file.offset - offset)), Buffer.from(file.hash!, 'binary'));
      if (file.size > CHUNK) {
        if (file.pieces?.length !== Math.ceil(file.size / CHUNK)) throw new Error(`file ${file.ordinal} has no piece hashes`);
        for (const piece of file.pieces) parts.push(Buffer.from(piece, 'binary'));
      }
      offset = file.offset;
    }
  }
  const head = Buffer.alloc(8);
  MAGIC.copy(head);
  head[4] = VERSION;
  return Buffer.concat([head, zlib.zstdCompressSync(Buffer.concat(parts))]);
}

/** Reads a serialized index; `source` names it in errors. Every count is capped before use. */
export async function deserializeIndex(data: Buffer, source = 'have-list index'): Promise<BaseFileIndex> {
  if (data.length < 8 || !data.subarray(0, 4).equals(MAGIC)) throw new DeltaFormatError(source, 'not a ddiff file index');
  if (data[4] !== VERSION) throw new DeltaFormatError(source, `file index version ${data[4]} is not the one this ddiff reads (${VERSION})`);
  try {
    return await readIndex(new RecordReader(new ChunkReader(zlib.createZstdDecompress().end(data.subarray(8))), source));
  } catch (error) {
    if (error instanceof DeltaFormatError) throw error;
    throw new DeltaFormatError(source, `file index is corrupt: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function readIndex(records: RecordReader): Promise<BaseFileIndex> {
  const { source } = records;
  const index = new BaseFileIndex();
  const layers = await records.size('layer count', 0, MAX_LAYERS);
  for (let l = 0; l < layers; l++) {
    const diffId = `sha256:${(await records.bytes(32)).toString('hex')}` as const;
    const size = await records.varint('layer size');
    const count = await records.size('file count', 0, MAX_FILES);
    const files = [];
    let offset = 0;
    for (let f = 0; f < count; f++) {
      const fileSize = await records.varint('file size');
      offset += unzigzag(await records.varint('file offset'));
      const hash = (await records.bytes(32)).toString('binary');
      if (offset < 0 || offset + fileSize > size) {
        throw new DeltaFormatError(source, `file ${f} of layer ${diffId} lies outside the layer`);
      }
      if (fileSize <= CHUNK) {
        files.push({ path: '', size: fileSize, offset, hash });
        continue;
      }
      // Bounded by the layer size just checked: a piece hash per MiB of it.
      const pieces: string[] = [];
      for (let p = 0; p < Math.ceil(fileSize / CHUNK); p++) pieces.push((await records.bytes(32)).toString('binary'));
      files.push({ path: '', size: fileSize, offset, hash, head: pieces[0]!, pieces });
    }
    index.addKnownLayer({ diffId, size, files });
  }
  if (!(await records.atEnd())) throw new DeltaFormatError(source, 'file index has data after its end');
  return index;
}
