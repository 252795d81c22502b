import { createHash } from 'node:crypto';
import { Sha256Thread } from '../util/sha256-thread.js';
import type { Readable, Writable } from 'node:stream';
import type { DeltaBase } from './base-bytes.js';
import type { BaseFile } from './base-index.js';
import { ChunkReader } from './chunk-reader.js';
import { encodeBigFile } from './encode-big.js';
import { EncodeState, type EncodeStats } from './encode-state.js';
import { CHUNK, DICT_MAX, PREFIX_SIZE, record, Tag } from './format.js';
import { RecordSink } from './sink.js';
import { scanTar } from './tar-scan.js';

/** Layer delta writer; the format is described in format.ts. */
export interface EncodeOptions {
  /** zstd level for the delta stream's verbatim and literal bytes (default 3). */
  level?: number;
  /** End `out` when done (default true). */
  end?: boolean;
  /**
   * Decode every binary delta back and keep it only if it gives its input exactly (default
   * false). `stats.digest` then is what the delta rebuilds to by construction, with no trust in
   * zstd's round trip; it costs ~10 % more time and, on big files changed throughout, ~35 MB
   * more peak RSS (decompression contexts beside the compression's). Without it, a decode
   * (verifyLayerDelta) is the proof.
   */
  verifyDeltas?: boolean;
}

export type { EncodeStats };

async function* hashing(source: AsyncIterable<Uint8Array>, hash: Sha256Thread): AsyncGenerator<Uint8Array> {
  for await (const chunk of source) {
    await hash.update(chunk);
    yield chunk;
  }
}

/**
 * An identical base file: the one at the same path when its bytes compare equal (no hashing:
 * a rebuilt base has almost every file there), else any of the same size by content hash.
 */
async function identical(state: EncodeState, path: string, size: number, parts: Buffer[]): Promise<BaseFile | undefined> {
  const { index } = state.base;
  const same = index.samePath(path);
  if (same !== undefined && same.size === size && state.reader !== undefined) {
    if (await state.reader.equals(same.layer, same.offset, parts)) return same;
  }
  if (!index.hasSize(size)) return undefined;
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  const reader = state.reader;
  return index.identical(hash.digest('binary'), size, reader && ((file) => reader.sha256(file.layer, file.offset, file.size)));
}

async function encodeSmallFile(state: EncodeState, path: string, size: number, parts: Buffer[]): Promise<void> {
  const same = await identical(state, path, size, parts);
  if (same !== undefined) {
    state.count('referenced', size);
    return state.sink.record(record(Tag.ref, ...state.source(same)));
  }
  const similar = state.reader && state.base.index.similar(path, size);
  const made = similar && (await state.delta(parts, size, similar, 0, Math.min(similar.size, DICT_MAX)));
  if (made === undefined || similar === undefined) {
    state.count('literal', size);
    return state.sink.record(record(Tag.literal, size), ...parts);
  }
  state.count('deltified', size);
  return state.sink.record(record(Tag.delta, ...state.source(similar), size, made.payload.length), made.digest, made.payload);
}

/**
 * Writes the delta of one target layer (its uncompressed tar) against `base` to `out`.
 * Without `base.bytes` only exact references are made (a have-list index); binary deltas
 * need the old bytes.
 */
export async function encodeLayerDelta(
  target: Readable | AsyncIterable<Uint8Array>,
  base: DeltaBase,
  out: Writable,
  options: EncodeOptions = {},
): Promise<EncodeStats> {
  const sink = new RecordSink(out, options.level ?? 3, options.end ?? true);
  const state = new EncodeState(base, sink, options.verifyDeltas ?? false);
  const layers = base.index.layers;
  const total = new Sha256Thread();
  try {
    const diffIds = layers.map((layer) => Buffer.from(layer.diffId.slice('sha256:'.length), 'hex'));
    await sink.record(record(Tag.base, layers.length), ...diffIds);
    const reader = new ChunkReader(hashing(target, total));
    for await (const piece of scanTar(reader)) {
      if (piece.kind === 'raw') await sink.raw(piece.data);
      else if (piece.kind === 'file' && piece.size <= CHUNK) {
        await encodeSmallFile(state, piece.path, piece.size, await piece.content.parts());
      } else if (piece.kind === 'file') await encodeBigFile(state, piece.path, piece.size, piece.content);
    }
    const { digest: hex } = await total.digest();
    const digest = Buffer.from(hex.slice('sha256:'.length), 'hex');
    await sink.record(record(Tag.end, reader.position), digest);
    await sink.end();
    state.stats.digest = `sha256:${digest.toString('hex')}`;
    state.stats.bytesIn = reader.position;
    state.stats.bytesOut = sink.written + PREFIX_SIZE;
    state.stats.baseLayers = [...state.used].sort((a, b) => a - b).map((layer) => layers[layer]!.diffId);
    return state.stats;
  } catch (error) {
    total.abort();
    await sink.abort(error);
    throw error;
  }
}
