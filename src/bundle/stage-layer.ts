import { createFileWriter, writeFailure, writePieces } from '../util/write-file.js';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { PassThrough, type Duplex, type Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Catalog } from '../archive/catalog.js';
import { MeasuringStream } from '../archive/measure.js';
import { DigestMismatchError } from '../errors.js';
import { isContentAddressed } from '../image/blob-names.js';
import type { Layer } from '../image/layer.js';
import { compressor as parallelCompressor, DEFAULT_LEVELS as CODEC_LEVELS } from '../util/compress.js';
import { InflatedSizeCounter } from '../util/compression.js';
import { compressFileRange } from '../util/compress-file.js';
import { countingStream } from '../util/counting-stream.js';
import { type Digest, hexOf } from '../util/digest.js';
import { DigestingStream } from '../util/digesting-stream.js';
import type { StagedBlob } from './delta-stage.js';

const LAYER_MEDIA_TYPES = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;

/**
 * Copies a target layer into the staging dir in its bundle form: compressed layers byte for
 * byte, uncompressed ones through zstd (default) or gzip. The bytes are checked against the
 * layer's digest (or diffID) as they pass. Every compressed blob records its uncompressed size,
 * so `load` can feed it inflated to an engine that cannot read its compression (Docker 20.10
 * and zstd): known from the input when ddiff compressed it, counted by inflating a zstd layer
 * that arrived compressed.
 */
export async function stageLayer(
  catalog: Catalog,
  layer: Layer,
  dir: string,
  how: LayerCompression,
  counted: (bytes: number) => void,
): Promise<StagedBlob> {
  const file = join(dir, `layer-${hexOf(layer.diffId)}`);
  const compress = layer.compression === 'none';
  const expected = compress ? layer.diffId : layer.digest;
  const mismatch = (got: Digest) =>
    new DigestMismatchError(
      catalog.source,
      `layer '${layer.path}' (diffID ${layer.diffId}) is corrupt: its bytes hash to ${got}, expected ${expected}`,
    );
  // A layer lying in a file is read in place: compressed piece by piece from reused buffers into
  // reused buffers, each piece hashed as it is read; no stream of fresh Buffers.
  const inPlace = compress && layer.file ? { ...layer.file, length: layer.size } : undefined;
  if (inPlace && how.method !== 'none') {
    const checked = createHash('sha256');
    const written = await writePieces(file, compressFileRange(inPlace, how.method, how.level, counted, checked));
    const got: Digest = `sha256:${checked.digest('hex')}`;
    if (got !== expected) throw mismatch(got);
    return { ...written, mediaType: LAYER_MEDIA_TYPES[how.method], file, uncompressedSize: layer.size };
  }
  const output = new DigestingStream();
  const stages: (Readable | Writable | Transform)[] = [];
  let inflating: MeasuringStream | undefined;
  stages.push(catalog.open(layer.path), countingStream(counted), new DigestingStream({ digest: expected, mismatch }));
  // Compressed bytes that no name or descriptor vouches for (a .tar.gz in a docker-archive) are
  // also inflated on the way, so a layer that does not match its diffID is never bundled.
  if (!compress && !isContentAddressed(layer.path)) {
    inflating = new MeasuringStream(catalog.source);
    stages.push(inflating);
  }
  if (compress) stages.push(compressor(how));
  const inflatedCount =
    !compress && layer.compression === 'zstd' && layer.uncompressedSize === undefined
      ? new InflatedSizeCounter(layer.compression, catalog.source)
      : undefined;
  if (inflatedCount) stages.push(inflatedCount);
  const staged = createFileWriter(file);
  stages.push(output, staged);
  try {
    await pipeline(stages as unknown as [Readable, ...Writable[]]);
  } catch (error) {
    throw writeFailure(staged, error);
  }
  const inflatedDiffId = inflating?.facts().diffId;
  if (inflatedDiffId !== undefined && inflatedDiffId !== layer.diffId) {
    throw new DigestMismatchError(
      catalog.source,
      `layer '${layer.path}' is corrupt: its uncompressed bytes hash to ${inflatedDiffId}, not its diffID ${layer.diffId}`,
    );
  }
  const compression = compress ? how.method : layer.compression;
  const mediaType =
    compression === 'gzip' || compression === 'zstd' || compression === 'none' ? LAYER_MEDIA_TYPES[compression] : layer.mediaType;
  const blob: StagedBlob = { digest: output.digest(), size: output.size, mediaType, file };
  const uncompressedSize = compress ? layer.size : (layer.uncompressedSize ?? inflatedCount?.size());
  if (compression !== 'none' && uncompressedSize !== undefined) blob.uncompressedSize = uncompressedSize;
  return blob;
}

export interface LayerCompression {
  method: 'gzip' | 'zstd' | 'none';
  level: number;
}

export const DEFAULT_LEVELS = { ...CODEC_LEVELS, none: 0 } as const;

/** zstd (the default) and gzip in-process on every core (ParallelCompressor); no system tool. */
function compressor(how: LayerCompression): Duplex {
  if (how.method === 'none') return new PassThrough();
  return parallelCompressor(how.method, how.level);
}
