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
import type { BundleBlob } from './format.js';
import type { PieceProducer } from '../util/inflate-file.js';

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
  const mismatch = (got: Digest) => corruptLayer(catalog.source, layer, got, expected);
  if (compressesInPlace(layer, how))
    return { ...(await compressInPlace(layer, how, counted, (produce) => writePieces(file, produce))), file };
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
  const blob: StagedBlob = { digest: output.digest(), size: output.size, mediaType: bundledMediaType(layer, how), file };
  const uncompressedSize = compress ? layer.size : (layer.uncompressedSize ?? inflatedCount?.size());
  if (compression !== 'none' && uncompressedSize !== undefined) blob.uncompressedSize = uncompressedSize;
  return blob;
}

function corruptLayer(source: string, layer: Layer, got: Digest, expected: Digest): DigestMismatchError {
  return new DigestMismatchError(
    source,
    `layer '${layer.path}' (diffID ${layer.diffId}) is corrupt: its bytes hash to ${got}, expected ${expected}`,
  );
}

/** The media type a layer's blob has in the bundle. */
export function bundledMediaType(layer: Layer, how: LayerCompression): string {
  const compression = layer.compression === 'none' ? how.method : layer.compression;
  return compression === 'gzip' || compression === 'zstd' || compression === 'none' ? LAYER_MEDIA_TYPES[compression] : layer.mediaType;
}

/** Whether a layer is compressed where it lies in a file (compressInPlace), not streamed. */
export function compressesInPlace(layer: Layer, how: LayerCompression): how is InPlaceCompression {
  return layer.compression === 'none' && layer.file !== undefined && how.method !== 'none';
}

type InPlaceCompression = LayerCompression & { method: 'gzip' | 'zstd' };

/**
 * The blob of a layer lying uncompressed in a file, compressed where it lies (from reused
 * buffers into reused buffers, each piece hashed as it is read: no stream of fresh Buffers) and
 * written by `write`; checked against the layer's diffID.
 */
export async function compressInPlace(
  layer: Layer,
  how: InPlaceCompression,
  counted: (bytes: number) => void,
  write: (produce: PieceProducer) => Promise<{ digest: Digest; size: number }>,
): Promise<BundleBlob> {
  const checked = createHash('sha256');
  const range = { path: layer.file!.path, offset: layer.file!.offset, length: layer.size };
  const written = await write(compressFileRange(range, how.method, how.level, counted, checked));
  const got: Digest = `sha256:${checked.digest('hex')}`;
  if (got !== layer.diffId) throw corruptLayer(layer.source, layer, got, layer.diffId);
  return { ...written, mediaType: LAYER_MEDIA_TYPES[how.method], uncompressedSize: layer.size };
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
