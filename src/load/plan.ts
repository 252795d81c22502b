import type { Writable } from 'node:stream';
import { ImageArchiveWriter, type ArchiveWriterOptions, type ImageToWrite, type LayerToWrite } from '../archive/write-archive.js';
import type { BundleImage } from '../bundle/format.js';
import { bundleLayer, type Bundle } from '../bundle/read.js';
import { copySavedLayers } from '../engine/save-stream.js';
import { MissingLayersError } from '../errors.js';
import { blobPath } from '../image/blob-names.js';
import type { Layer, OmittedLayer } from '../image/layer.js';
import type { TarOutput } from '../tar/writer.js';
import type { Digest } from '../util/digest.js';
import type { BaseSource } from './base.js';

/** Writes the rebuilt archive into `out` (in the form `options` asks for). */
export type ArchiveJob = (out: Writable | TarOutput, options: ArchiveWriterOptions) => Promise<void>;

/** The images to write, their base layers taken from `baseLayer`. */
async function imagesFrom(
  bundle: Bundle,
  images: BundleImage[],
  baseLayer: (diffId: Digest) => LayerToWrite,
  rebuilt: Map<Digest, Layer>,
): Promise<ImageToWrite[]> {
  return Promise.all(
    images.map(async (image) => ({
      id: image.id,
      configBytes: await bundle.catalog.bytes(blobPath(image.id)),
      tags: image.tags,
      layers: await Promise.all(
        image.layers.map((l) => rebuilt.get(l.diffId) ?? (l.blob ? bundleLayer(bundle, l.diffId, l.blob) : baseLayer(l.diffId))),
      ),
    })),
  );
}

/**
 * How the archive is rebuilt from the bundle plus the base: base layers from an archive (read
 * as needed), from an engine's `save` (streamed straight into the output as it arrives), or
 * left out for Docker's fast path (`omit`).
 */
export function planArchive(
  bundle: Bundle,
  images: BundleImage[],
  base: BaseSource,
  needed: Digest[],
  /** Base layers the engine holds, left out of the archive (its fast path). */
  omit: ReadonlyMap<Digest, OmittedLayer> | undefined,
  /** Delta layers, already rebuilt and checked (load/delta-layers.ts). */
  rebuilt: Map<Digest, Layer>,
): ArchiveJob {
  return async (out, options) => {
    const writer = new ImageArchiveWriter(out, options);
    try {
      let baseLayer: (diffId: Digest) => LayerToWrite;
      if (omit) {
        baseLayer = (diffId) => omit.get(diffId) ?? { omitted: true, diffId };
      } else if (base.kind === 'archive') {
        baseLayer = (diffId) => base.layers.get(diffId)!;
      } else if (base.kind === 'engine') {
        const copied = await copyEngineBase(base, writer);
        const missing = needed.filter((d) => !copied.has(d));
        if (missing.length > 0) {
          throw new MissingLayersError(
            `base ${base.engine.name}:${base.name} lacks ${missing.length} layer(s) the bundle needs: ${missing.join(', ')}`,
          );
        }
        baseLayer = (diffId) => copied.get(diffId)!;
      } else {
        baseLayer = (diffId) => {
          throw new MissingLayersError(`the bundle needs base layer ${diffId} and no base was given`);
        };
      }
      await writer.finish(await imagesFrom(bundle, images, baseLayer, rebuilt));
    } catch (error) {
      writer.destroy(error as Error);
      throw error;
    }
  };
}

/** The engine's `save` of the base images, copied into the writer as it streams. */
async function copyEngineBase(base: BaseSource & { kind: 'engine' }, writer: ImageArchiveWriter) {
  const { engine, images, name } = base;
  const saved = engine.saveStream(images.map((image) => image.id));
  try {
    const copied = await copySavedLayers(saved.stream, writer, `${engine.name} save ${name}`);
    await saved.done;
    return copied;
  } catch (error) {
    // A save that broke off (killed, or failing with a message) leaves a truncated stream: the
    // engine's own failure is the cause to report, not the truncation.
    await saved.stop();
    await saved.done;
    throw error;
  }
}
