import { createReadStream, createWriteStream } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Duplex, type Readable, type Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type { Catalog } from '../archive/catalog.js';
import { isContentAddressed } from '../image/blob-names.js';
import { MeasuringStream } from '../archive/measure.js';
import { DigestMismatchError } from '../errors.js';
import { formatPlatform, type Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import { TarWriter } from '../tar/writer.js';
import { compressor as parallelCompressor, DEFAULT_LEVELS as CODEC_LEVELS } from '../util/compress.js';
import { InflatedSizeCounter } from '../util/compression.js';
import { progress } from '../util/progress.js';
import { atomicOutput, tempDir } from '../util/cleanup.js';
import { hexOf, type Digest } from '../util/digest.js';
import { DigestingStream } from '../util/digesting-stream.js';
import { blobPath } from '../image/blob-names.js';
import { DeltaStager, type DeltaSources, type StagedBlob } from './delta-stage.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  BUNDLE_VERSION_WITHOUT_DELTAS,
  METADATA_ENTRY,
  type BundleBlob,
  type BundleImage,
  type BundleMetadata,
} from './format.js';

const LAYER_MEDIA_TYPES = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
} as const;
const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';

interface BundleInput {
  base: BundleMetadata['base'];
  /** Target images with the archive holding their layers. */
  targets: { image: Image; catalog: Catalog }[];
  /** DiffIDs the base has: these layers are left out. */
  baseHas: Set<Digest>;
  /** How layers that arrive uncompressed are stored. */
  compression: LayerCompression;
  /** Base layers a new layer may be stored as a delta against (absent: every layer whole). */
  deltas?: DeltaSources;
}

interface BundleResult {
  metadata: BundleMetadata;
  /** Bytes written. */
  size: number;
}

/**
 * Copies a target layer into the staging dir in its bundle form: compressed layers byte for
 * byte, uncompressed ones through zstd (default) or gzip. The bytes are checked against the
 * layer's digest (or diffID) as they pass. Every compressed blob records its uncompressed size,
 * so `load` can feed it inflated to an engine that cannot read its compression (Docker 20.10
 * and zstd): known from the input when ddiff compressed it, counted by inflating a zstd layer
 * that arrived compressed.
 */
async function stageLayer(catalog: Catalog, layer: Layer, dir: string, how: LayerCompression): Promise<StagedBlob> {
  const file = join(dir, `layer-${hexOf(layer.diffId)}`);
  const compress = layer.compression === 'none';
  const expected = compress ? layer.diffId : layer.digest;
  const input = new DigestingStream({
    digest: expected,
    mismatch: (got) =>
      new DigestMismatchError(
        catalog.source,
        `layer '${layer.path}' (diffID ${layer.diffId}) is corrupt: its bytes hash to ${got}, expected ${expected}`,
      ),
  });
  const output = new DigestingStream();
  // Compressed bytes that no name or descriptor vouches for (a .tar.gz in a docker-archive) are
  // also inflated on the way, so a layer that does not match its diffID is never bundled.
  const inflating = !compress && !isContentAddressed(layer.path) ? new MeasuringStream(catalog.source) : undefined;
  const label = `${compress && how.method !== 'none' ? 'compressing' : 'copying'} ${layer.diffId.slice(7, 19)}`;
  const stages: (Readable | Writable | Transform)[] = [catalog.open(layer.path), progress(label, layer.size), input];
  if (inflating) stages.push(inflating);
  if (compress) stages.push(compressor(how));
  const counting =
    !compress && layer.compression === 'zstd' && layer.uncompressedSize === undefined
      ? new InflatedSizeCounter(layer.compression, catalog.source)
      : undefined;
  if (counting) stages.push(counting);
  stages.push(output, createWriteStream(file));
  await pipeline(stages as unknown as [Readable, ...Writable[]]);
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
  const uncompressedSize = compress ? input.size : (layer.uncompressedSize ?? counting?.size());
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

/** Writes a bundle to `output` (a path, or '-' for stdout), atomically for paths. */
export async function writeBundle(output: string, input: BundleInput): Promise<BundleResult> {
  const staging = await tempDir('ddiff-stage-');
  const staged = new Map<Digest, Promise<BundleBlob & { file: string }>>();
  const stager =
    input.deltas && input.deltas.layers.length > 0 ? new DeltaStager(input.deltas, staging.path, input.compression.level || 3) : undefined;
  try {
    const limit = pLimit(Math.max(1, Math.min(4, cpus().length)));
    const deltaLimit = pLimit(1);
    const configs = new Map<Digest, Buffer>();
    const images: BundleImage[] = [];
    const needed = new Set<Digest>();

    for (const { image, catalog } of input.targets) {
      configs.set(image.id, image.configBytes);
      const layers = image.layers.map((layer) => {
        if (input.baseHas.has(layer.diffId)) {
          needed.add(layer.diffId);
          return { diffId: layer.diffId, size: layer.size, staged: undefined };
        }
        let blob = staged.get(layer.diffId);
        if (!blob) {
          blob = limit(async () => {
            // An uncompressed layer is read once for both its delta and its whole blob; one at
            // a time, as deltas run mostly on the main thread and each holds its own buffers.
            if (stager && layer.compression === 'none') {
              const whole = () => stageLayer(catalog, layer, staging.path, input.compression);
              const kept = await deltaLimit(() => stager.stage(layer, catalog.open(layer.path), whole));
              if (kept) return kept;
            }
            return stageLayer(catalog, layer, staging.path, input.compression);
          });
          blob.catch(() => undefined);
          staged.set(layer.diffId, blob);
        }
        return { diffId: layer.diffId, size: layer.size, staged: blob };
      });
      const resolved = await Promise.all(
        layers.map(async (l) =>
          l.staged ? { diffId: l.diffId, blob: (await l.staged).digest, size: l.size } : { diffId: l.diffId, size: l.size },
        ),
      );
      images.push({ tags: image.tags, id: image.id, platform: formatPlatform(image.platform), layers: resolved });
    }

    const layerBlobs = await Promise.all(staged.values());
    for (const blob of layerBlobs) for (const diffId of blob.delta?.baseLayers ?? []) needed.add(diffId);
    const blobs: BundleBlob[] = [
      ...[...configs].map(([id, bytes]) => ({ digest: id, size: bytes.length, mediaType: CONFIG_MEDIA_TYPE })),
      ...layerBlobs.map(({ file: _file, ...blob }) => blob),
    ];
    const metadata: BundleMetadata = {
      format: BUNDLE_FORMAT,
      version: layerBlobs.some((b) => b.delta) ? BUNDLE_VERSION : BUNDLE_VERSION_WITHOUT_DELTAS,
      created: new Date().toISOString(),
      base: { ...input.base, needed: [...needed] },
      images,
      blobs,
    };

    const target = output === '-' ? undefined : atomicOutput(output);
    const sink = target ? createWriteStream(target.tempPath) : process.stdout;
    const counter = new DigestingStream();
    const writer = new TarWriter(counter);
    const written = pipeline(counter, sink);
    written.catch(() => undefined); // awaited below; a failing sink (ENOSPC) must not be an unhandled rejection meanwhile
    try {
      await writer.addBuffer(METADATA_ENTRY, `${JSON.stringify(metadata, null, 2)}\n`);
      for (const [id, bytes] of configs) await writer.addBuffer(blobPath(id), bytes);
      // Staging is keyed by diffID, so each layer blob is here once.
      for (const blob of layerBlobs) await writer.addStream(blobPath(blob.digest), blob.size, createReadStream(blob.file));
      await writer.finish();
      await written;
      await target?.commit();
    } catch (error) {
      writer.destroy();
      await target?.abort();
      throw error;
    }
    return { metadata, size: counter.size };
  } finally {
    // A failed layer rejects early; its siblings must stop writing before the directory goes.
    await Promise.allSettled(staged.values());
    await stager?.close();
    await staging.dispose();
  }
}
