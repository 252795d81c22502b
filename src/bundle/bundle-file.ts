import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { blobPath } from '../image/blob-names.js';
import { formatPlatform, type Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import { FileTarWriter } from '../tar/file-writer.js';
import type { PlacedEntry, TarOutput } from '../tar/writer.js';
import { atomicOutput } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import pLimit from 'p-limit';
import type { StagedBlob } from './delta-stage.js';
import { type BundleBlob, type BundleMetadata, bundleMetadata, configBlob, METADATA_ENTRY, metadataText } from './format.js';
import { bundledMediaType, compressInPlace, type LayerCompression } from './stage-layer.js';

/** What a bundle's metadata is made from, before any layer is compressed. */
interface Planned {
  base: BundleMetadata['base'];
  targets: { image: Image }[];
  baseHas: Set<Digest>;
  compression: LayerCompression;
}

const PLACEHOLDER_DIGEST: Digest = `sha256:${'f'.repeat(64)}`;

/**
 * Bytes the metadata can take once every layer is bundled: the same document with each value
 * not yet known at its longest (digests are all one length, sizes at most 16 digits). Only for
 * bundles without deltas, whose records have no bounded size.
 */
function metadataRoom(plan: Planned, created: string): number {
  const fresh = new Map<Digest, Layer>();
  for (const { image } of plan.targets) for (const l of image.layers) if (!plan.baseHas.has(l.diffId)) fresh.set(l.diffId, l);
  const most = Number.MAX_SAFE_INTEGER;
  const images = plan.targets.map(({ image }) => ({
    tags: image.tags,
    id: image.id,
    platform: formatPlatform(image.platform),
    layers: image.layers.map((l) =>
      plan.baseHas.has(l.diffId) ? { diffId: l.diffId, size: l.size } : { diffId: l.diffId, blob: PLACEHOLDER_DIGEST, size: l.size },
    ),
  }));
  const blobs: BundleBlob[] = [
    ...plan.targets.map(({ image }) => configBlob(image.id, image.configBytes)),
    ...[...fresh.values()].map((l) => ({
      digest: PLACEHOLDER_DIGEST,
      size: most,
      mediaType: bundledMediaType(l, plan.compression),
      uncompressedSize: most,
    })),
  ];
  const needed = [...new Set(plan.targets.flatMap(({ image }) => image.layers.map((l) => l.diffId).filter((d) => plan.baseHas.has(d))))];
  return Buffer.byteLength(metadataText(bundleMetadata(plan.base, images, blobs, needed, created)));
}

/**
 * A bundle written straight into its file: room for the metadata first (metadataRoom), the
 * configs, then each layer compressed where it lies appended after what is there, one at a
 * time, named by its digest once it is known; blobs staged elsewhere are copied in at the end,
 * and the metadata is written last into its room, padded with spaces (JSON allows them). The
 * staged copy of every layer, a second write and read of the bundle's bytes, is not made.
 */
export class BundleFile {
  private readonly tail = pLimit(1);

  private constructor(
    private readonly target: ReturnType<typeof atomicOutput>,
    private file: FileHandle | undefined,
    private readonly writer: FileTarWriter,
    private readonly metadata: { entry: PlacedEntry; room: number },
  ) {}

  static async open(output: string, plan: Planned, created: string): Promise<BundleFile> {
    const target = atomicOutput(output);
    let file: FileHandle | undefined;
    try {
      file = await open(target.tempPath, 'w');
      const writer = new FileTarWriter(file, target.tempPath);
      const room = metadataRoom(plan, created);
      const entry = writer.place(METADATA_ENTRY, room);
      const written = new Set<Digest>();
      for (const { image } of plan.targets) {
        if (!written.has(image.id)) await writer.addBuffer(blobPath(image.id), image.configBytes);
        written.add(image.id);
      }
      return new BundleFile(target, file, writer, { entry, room });
    } catch (error) {
      await file?.close().catch(() => undefined);
      await target.abort();
      throw target.named(error);
    }
  }

  /** A layer lying uncompressed in a file, compressed into the bundle after what is there. */
  append(layer: Layer, how: LayerCompression & { method: 'gzip' | 'zstd' }, counted: (bytes: number) => void): Promise<BundleBlob> {
    return this.tail(() => compressInPlace(layer, how, counted, (produce) => this.writer.append(produce, blobPath)));
  }

  /** Copies in the blobs staged elsewhere, writes the metadata into its room and commits the file: its size. A failure is the caller's to `abort`. */
  async finish(metadata: BundleMetadata, staged: StagedBlob[]): Promise<number> {
    for (const blob of staged) await copyInto(this.writer, blob);
    const text = metadataText(metadata);
    const length = Buffer.byteLength(text);
    if (length > this.metadata.room)
      throw new Error(`the bundle's metadata took ${length} bytes, over the ${this.metadata.room} kept for it`);
    await this.metadata.entry.write(Readable.from([Buffer.from(text + ' '.repeat(this.metadata.room - length))]));
    await this.writer.finish();
    const { size } = await this.file!.stat();
    await this.file!.close();
    this.file = undefined;
    await this.target.commit();
    return size;
  }

  /** Stops every write, removes the file: the error to report, naming the user's output. */
  async abort(error: unknown): Promise<unknown> {
    this.writer.destroy(error instanceof Error ? error : undefined);
    await this.tail(async () => undefined); // an append under way stops first
    await this.file?.close().catch(() => undefined);
    this.file = undefined;
    await this.target.abort();
    return this.target.named(error);
  }
}

/** A staged blob into its entry: in a file, copied on the hashing thread, which must find the digest staged. */
export async function copyInto(writer: TarOutput, blob: StagedBlob): Promise<void> {
  const entry = writer.place(blobPath(blob.digest), blob.size);
  if (!entry.copyFile) return entry.write(createReadStream(blob.file));
  const { digest } = await entry.copyFile({ path: blob.file, offset: 0 });
  if (digest !== blob.digest) throw new Error(`the staged blob ${blob.file} changed while the bundle was written`);
}
