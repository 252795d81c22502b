import { cpus } from 'node:os';
import { open, type FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pLimit from 'p-limit';
import type { Catalog } from '../archive/catalog.js';
import { formatPlatform, type Image } from '../image/image.js';
import { FileTarWriter } from '../tar/file-writer.js';
import { type TarOutput, TarWriter } from '../tar/writer.js';
import { allOrStop } from '../util/all-or-stop.js';
import { countingStream } from '../util/counting-stream.js';
import { type Step, stepOver } from '../util/progress.js';
import { atomicOutput, tempDir } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import { blobPath } from '../image/blob-names.js';
import { DeltaStager, type DeltaSources } from './delta-stage.js';
import { compressesInPlace, type LayerCompression, stageLayer } from './stage-layer.js';
import { BundleFile, copyInto } from './bundle-file.js';
import {
  type BundleBlob,
  type BundleImage,
  type BundleMetadata,
  bundleMetadata,
  configBlob,
  METADATA_ENTRY,
  metadataText,
} from './format.js';

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

/** Writes a bundle to `output` (a path, or '-' for stdout), atomically for paths. */
export async function writeBundle(output: string, input: BundleInput): Promise<BundleResult> {
  const staging = await tempDir('ddiff-stage-');
  let step: Step | undefined;
  const staged = new Map<Digest, Promise<BundleBlob & { file?: string }>>();
  const stager =
    input.deltas && (input.deltas.layers.length > 0 || input.deltas.index)
      ? new DeltaStager(input.deltas, staging.path, input.compression.level || 3)
      : undefined;
  const created = new Date().toISOString();
  let direct: BundleFile | undefined;
  try {
    // Into the file itself, no staged copy: its metadata's room is known first, which deltas' records do not allow.
    if (output !== '-' && !stager) direct = await BundleFile.open(output, input, created);
    const limit = pLimit(Math.max(1, Math.min(4, cpus().length)));
    const deltaLimit = pLimit(1);
    const configs = new Map<Digest, Buffer>();
    const images: BundleImage[] = [];
    const needed = new Set<Digest>();
    const fresh = input.targets.flatMap(({ image }) => image.layers.filter((l) => !input.baseHas.has(l.diffId)));
    const bundling = stepOver('bundling', fresh, (l) => l.diffId);
    step = bundling;

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
              // Progress counts the one read the delta makes, not the whole blob written from it.
              const whole = () => stageLayer(catalog, layer, staging.path, input.compression, () => undefined);
              const kept = await deltaLimit(() => stager.stage(layer, bundling.countedOf(catalog.open(layer.path), layer), whole));
              if (kept) return kept;
            }
            if (direct && compressesInPlace(layer, input.compression))
              return direct.append(layer, input.compression, bundling.counterOf(layer));
            return stageLayer(catalog, layer, staging.path, input.compression, bundling.counterOf(layer));
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
      ...[...configs].map(([id, bytes]) => configBlob(id, bytes)),
      ...layerBlobs.map(({ file: _file, ...blob }) => blob),
    ];
    const metadata = bundleMetadata(input.base, images, blobs, [...needed], created);
    const stagedFiles = layerBlobs.filter((b): b is StagedFile => b.file !== undefined);
    const size = await (direct
      ? direct.finish(metadata, stagedFiles)
      : output === '-'
        ? streamBundle(process.stdout, metadata, configs, stagedFiles)
        : fileBundle(output, metadata, configs, stagedFiles));
    return { metadata, size };
  } catch (error) {
    throw direct ? await direct.abort(error) : error;
  } finally {
    // A failed layer rejects early; its siblings must stop writing before the directory goes.
    await Promise.allSettled(staged.values());
    step?.finish();
    await stager?.close();
    await staging.dispose();
  }
}

type StagedFile = BundleBlob & { file: string };

/** The bundle's entries: its metadata first, then configs and layer blobs, each named by its digest. */
type Entries = [metadata: BundleMetadata, configs: Map<Digest, Buffer>, layers: StagedFile[]];

async function writeEntries(
  writer: TarOutput,
  metadata: BundleMetadata,
  configs: Map<Digest, Buffer>,
  layers: StagedFile[],
): Promise<void> {
  await writer.addBuffer(METADATA_ENTRY, metadataText(metadata));
  for (const [id, bytes] of configs) await writer.addBuffer(blobPath(id), bytes);
  // Staging is keyed by diffID, so each layer blob is here once.
  if (!writer.concurrent) for (const blob of layers) await copyInto(writer, blob);
  else
    await allOrStop(
      layers.map((blob) => copyInto(writer, blob)),
      (error) => writer.destroy(error),
    );
  await writer.finish();
}

/** Writes the bundle to a file under a temporary name, every layer blob placed at once; returns its size. */
async function fileBundle(output: string, ...entries: Entries): Promise<number> {
  const target = atomicOutput(output);
  let file: FileHandle | undefined;
  try {
    file = await open(target.tempPath, 'w');
    const writer = new FileTarWriter(file, target.tempPath);
    await writeEntries(writer, ...entries);
    const { size } = await file.stat();
    await file.close();
    file = undefined;
    await target.commit();
    return size;
  } catch (error) {
    // close() waits for writes in flight: none lands after the file is removed.
    await file?.close().catch(() => undefined);
    await target.abort();
    throw target.named(error);
  }
}

/** Streams the bundle (standard output); returns its size. */
async function streamBundle(sink: Writable, ...entries: Entries): Promise<number> {
  // Counted, not hashed: every blob inside is named by its digest, and the bundle itself by nothing.
  let size = 0;
  const counter = countingStream((bytes) => (size += bytes));
  const written = pipeline(counter, sink);
  written.catch(() => undefined); // awaited below; a failing sink must not be an unhandled rejection meanwhile
  const writer = new TarWriter(counter);
  try {
    await writeEntries(writer, ...entries);
    await written;
  } catch (error) {
    writer.destroy();
    throw error;
  }
  return size;
}
