import type { Readable, Writable } from 'node:stream';
import { corrupt } from '../errors.js';
import { blobPath, digestFromName } from '../image/blob-names.js';
import {
  asLayerSizeError,
  checkStoredBytes,
  inflatedBytesChecked,
  inflatedSize,
  type Layer,
  type OmittedLayer,
  storedBytesChecked,
} from '../image/layer.js';
import pLimit from 'p-limit';
import { type TarOutput, TarWriter } from '../tar/writer.js';
import type { Compression } from '../util/compression.js';
import { sha256, type Digest } from '../util/digest.js';
import { allOrStop } from '../util/all-or-stop.js';
import { stepOver } from '../util/progress.js';
import { copiesBesideEachOther } from './copy-threads.js';
import { MeasuringStream } from './measure.js';
import { ociHalf, type PlacedBlob } from './oci-half.js';

/** A layer copied into the archive from a stream as it passed (an engine's `save`), before any image named it. */
export interface StreamedLayer extends Pick<Layer, 'diffId' | 'digest' | 'size' | 'compression'> {
  readonly streamed: true;
}

export type LayerToWrite = Layer | OmittedLayer | StreamedLayer;

export interface ImageToWrite {
  id: Digest;
  configBytes: Buffer;
  tags: string[];
  layers: LayerToWrite[];
}

export interface ArchiveWriterOptions {
  /** Compressions the reader of the archive cannot take: such layers are written uncompressed. */
  inflate?: ReadonlySet<Compression>;
  /** containerd reads the archive: full image names (`docker.io/library/…`) in the index. */
  normalizeNames?: boolean;
  /** The reader refuses a layer that does not hash to its diffID, as every engine does (inflatedBytesChecked). */
  readerChecksDiffIds?: boolean;
  /** No OCI half unless the reader needs it: Podman unpacks an OCI archive to a temp dir first (4.5-5.3 s vs 3.4-3.5 s). */
  dockerArchiveOnly?: boolean;
}

/** A layer's place in the archive being written: what the manifests say of it. */
interface Placed extends PlacedBlob {
  entry: string;
}

/**
 * Writes image archives as Docker ≥ 25 does: an OCI layout (`oci-layout`, `index.json`,
 * `blobs/sha256/…`) plus a docker-save `manifest.json`, which Docker 20.10+, Podman and skopeo
 * all load. Every entry name and every manifest line comes from what was actually written, so
 * the two halves always describe the same bytes. The OCI half is left out exactly when some
 * layer is not stored under its digest (omitted for Docker's fast path, or streamed into a
 * pipe under a provisional name), or for Podman (dockerArchiveOnly): a plain docker-archive.
 */
export class ImageArchiveWriter {
  private readonly tar: TarOutput;
  private readonly written = new Map<string, Placed>();
  private streamedCount = 0;
  private step: ReturnType<typeof stepOver<Layer>> | undefined;
  /** Checks of layers hashed beside their copy (storedBytesChecked): all pass before the archive's last entries. */
  private readonly checks: Promise<void>[] = [];
  /** Layer copies under way, for an output that takes several at once. */
  private readonly copies: Promise<void>[] = [];
  /** Two streams at once: on two cores, one waits on the disk while the other (a rebuild) computes. */
  private readonly atOnce = pLimit(2);
  /** File copies (on a hashing thread; two when copiesBesideEachOther) queue apart from the streams. */
  private readonly copiesAtOnce = pLimit(2);
  private copiesBeside = false;

  constructor(
    output: Writable | TarOutput,
    private readonly options: ArchiveWriterOptions = {},
  ) {
    this.tar = 'place' in output ? output : new TarWriter(output);
  }

  /**
   * Copies one layer from a stream whose digest is known only at its end (an engine's save),
   * hashing it on the way; `name` is the entry's own name in that stream, kept when it is
   * content-addressed (and then checked).
   */
  async addStreamedLayer(body: Readable, size: number, source: string, name: string): Promise<StreamedLayer> {
    const promised = digestFromName(name);
    const entry = promised && !this.written.has(blobPath(promised)) ? blobPath(promised) : `base/${this.streamedCount++}.tar`;
    const measuring = new MeasuringStream(source, { wantDiffId: true });
    const { offset, write } = this.tar.place(entry, size);
    await write(body, measuring);
    const facts = measuring.facts();
    if (promised && facts.digest !== promised) throw corrupt(source, `entry '${name}'`, `its bytes hash to ${facts.digest}`);
    const placed: Placed = { entry, digest: facts.digest, size, compression: facts.compression };
    const final = blobPath(facts.digest);
    // An output that is a file renames it (the archive then gets its OCI half); a pipe cannot.
    if (entry !== final && this.tar.rename && !this.written.has(final)) {
      await this.tar.rename(offset, final, size);
      placed.entry = final;
    }
    if (!this.written.has(placed.entry)) this.written.set(placed.entry, placed);
    if (!this.written.has(final)) this.written.set(final, placed);
    return { streamed: true, diffId: facts.diffId ?? facts.digest, digest: facts.digest, size, compression: facts.compression };
  }

  /** Writes the images: their layers not yet written, configs, manifests; then ends the tar. */
  async finish(images: ImageToWrite[]): Promise<void> {
    const copied = images.flatMap((i) => i.layers.filter((l): l is Layer => !('omitted' in l) && !('streamed' in l)));
    this.step = stepOver('writing', copied, (l) => l.diffId);
    this.copiesBeside = copiesBesideEachOther(copied, this.options.inflate);
    await this.writeImages(images).finally(() => this.step?.finish());
  }

  private async writeImages(images: ImageToWrite[]): Promise<void> {
    const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
    const ociImages: { image: ImageToWrite; layers: Placed[] }[] = [];
    let complete = true;
    let heldByReader = false;
    for (const image of images) {
      const layerPaths: string[] = [];
      const placedLayers: Placed[] = [];
      for (const layer of image.layers) {
        if ('omitted' in layer && layer.stored) {
          // containerd finds the blob in its content store: the OCI manifest names it, no entry holds it.
          const { digest, size, mediaType } = layer.stored;
          layerPaths.push(blobPath(digest));
          placedLayers.push({ entry: blobPath(digest), digest, size, compression: 'none', mediaType });
          heldByReader = true;
          continue;
        }
        if ('omitted' in layer) {
          // Docker's classic store finds the layer by its chain and never opens this name.
          layerPaths.push(blobPath(layer.diffId));
          complete = false;
          continue;
        }
        const placed = 'streamed' in layer ? this.written.get(blobPath(layer.digest)) : await this.addLayer(layer);
        if (!placed) throw new Error(`streamed layer ${layer.diffId} was not written`);
        if (placed.entry !== blobPath(placed.digest)) complete = false;
        layerPaths.push(placed.entry);
        placedLayers.push(placed);
      }
      await this.addBlob(blobPath(image.id), image.configBytes);
      dockerManifest.push({ Config: blobPath(image.id), RepoTags: image.tags, Layers: layerPaths });
      ociImages.push({ image, layers: placedLayers });
    }
    await this.settle();
    if (complete && (heldByReader || this.options.dockerArchiveOnly !== true)) await this.writeOciHalf(ociImages);
    // manifest.json would name entries that are not there; containerd reads the OCI half only.
    if (!heldByReader) await this.tar.addBuffer('manifest.json', JSON.stringify(dockerManifest));
    await this.tar.finish();
  }

  /**
   * Waits for every layer copy and check; on the first failed copy, stops the others (and waits
   * for them: nothing may still write into a file its caller is about to remove).
   */
  private async settle(): Promise<void> {
    // Every copy pushes its check (if any) when it starts: all are there once the copies end.
    await allOrStop(this.copies, (error) => this.tar.destroy(error));
    await Promise.all(this.checks);
  }

  destroy(error?: Error): void {
    this.tar.destroy(error);
  }

  private async addBlob(entry: string, bytes: Buffer): Promise<void> {
    if (this.written.has(entry)) return;
    this.written.set(entry, { entry, digest: sha256(bytes), size: bytes.length, compression: 'none' });
    await this.tar.addBuffer(entry, bytes);
  }

  /** Writes a layer under its digest, stored as it is or, for a reader that cannot take its compression, uncompressed. */
  private async addLayer(layer: Layer): Promise<Placed> {
    const inflate = this.options.inflate?.has(layer.compression) === true;
    const placed: Placed = inflate
      ? { entry: blobPath(layer.diffId), digest: layer.diffId, size: inflatedSize(layer), compression: 'none' }
      : { entry: blobPath(layer.digest), digest: layer.digest, size: layer.size, compression: layer.compression };
    const earlier = this.written.get(placed.entry);
    if (earlier) return earlier;
    this.written.set(placed.entry, placed);
    const entry = this.tar.place(placed.entry, placed.size);
    const step = this.step ?? stepOver('writing', [layer], (l) => l.diffId);
    const copyFile = layer.file && !inflate ? entry.copyFile : undefined;
    const write = async (): Promise<void> => {
      if (layer.file && copyFile) {
        const copied = await copyFile(layer.file, this.copiesBeside);
        if (!layer.checked) checkStoredBytes(layer, copied);
        step.doneWith(layer);
        return;
      }
      const readerChecks = this.options.readerChecksDiffIds === true;
      const copy = inflate ? inflatedBytesChecked(layer, readerChecks, step.counterOf(layer)) : storedBytesChecked(layer);
      if ('pieces' in copy) return entry.writeLent(copy.pieces);
      // A check beside the copy may end after it: the archive is not finished until every one has.
      if (copy.aside) this.checks.push(copy.aside);
      await entry.write(copy.data, ...copy.through, step.streamOf(layer));
    };
    const named = () => write().catch((error: unknown) => Promise.reject(asLayerSizeError(layer, inflate, error)));
    if (!this.tar.concurrent) await named();
    else {
      // Its place is taken: the entries after it are placed while its bytes are written.
      const copied = (copyFile ? this.copiesAtOnce : this.atOnce)(named);
      copied.catch(() => undefined);
      this.copies.push(copied);
    }
    return placed;
  }

  private async writeOciHalf(images: { image: ImageToWrite; layers: Placed[] }[]): Promise<void> {
    const half = ociHalf(images, this.options.normalizeNames === true);
    for (const manifest of half.manifests) await this.addBlob(blobPath(sha256(manifest)), manifest);
    await this.tar.addBuffer('index.json', half.index);
    await this.tar.addBuffer('oci-layout', half.layout);
  }
}
