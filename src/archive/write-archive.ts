import type { Readable, Transform, Writable } from 'node:stream';
import { DigestMismatchError } from '../errors.js';
import { TarWriter } from '../tar/writer.js';
import { progress } from '../util/progress.js';
import type { Compression } from '../util/compression.js';
import { DigestingStream, sha256, type Digest } from '../util/digest.js';
import { blobPath } from './formats/oci-layout.js';

/** A layer to write: where its stored bytes come from. */
export interface SourceLayer {
  diffId: Digest;
  digest: Digest;
  size: number;
  compression: Compression;
  open: () => Readable;
  /** The archive or bundle the bytes come from, for error messages. */
  source?: string;
  /** Already written into the archive under this entry name (base layers streamed in first). */
  writtenAs?: string;
}

export interface ArchiveImage {
  id: Digest;
  configBytes: Buffer;
  tags: string[];
  layers: SourceLayer[];
}

const LAYER_TYPES: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  bzip2: 'application/vnd.oci.image.layer.v1.tar',
  xz: 'application/vnd.oci.image.layer.v1.tar',
};

/**
 * Passes a layer's bytes through and fails at their end when they do not hash to the digest
 * they are written under: a corrupt base archive must not become a corrupt output archive.
 */
function verifying(layer: SourceLayer): Transform {
  return new DigestingStream({
    digest: layer.digest,
    mismatch: (got) =>
      new DigestMismatchError(
        layer.source ?? 'layer',
        `layer ${layer.diffId} is corrupt: its bytes hash to ${got}, expected ${layer.digest}`,
      ),
  });
}

/** The OCI ref-name annotation wants the tag alone; containerd's wants the full name. */
function annotationsFor(tag: string): Record<string, string> {
  const colon = tag.lastIndexOf(':');
  const bare = colon > tag.lastIndexOf('/') ? tag.slice(colon + 1) : 'latest';
  return { 'io.containerd.image.name': tag, 'org.opencontainers.image.ref.name': bare };
}

/**
 * Writes images as Docker ≥ 25 does: an OCI layout (`oci-layout`, `index.json`, `blobs/`)
 * plus a docker-save `manifest.json`, which Docker 20.10+, Podman and skopeo all load.
 *
 * With `omit`, the files of those layers are left out and only `manifest.json` is written: the
 * shape Docker's classic store loads when it already holds those layers' chain.
 */
export async function writeImageArchive(
  output: Writable,
  images: ArchiveImage[],
  options: { omit?: ReadonlySet<Digest> } = {},
): Promise<void> {
  const writer = new TarWriter(output);
  try {
    await writeImagesInto(writer, images, options);
    await writer.finish();
  } catch (error) {
    writer.destroy(error as Error);
    throw error;
  }
}

/** The entries of `writeImageArchive`, into a tar already under way (which the caller finishes). */
export async function writeImagesInto(
  writer: TarWriter,
  images: ArchiveImage[],
  options: { omit?: ReadonlySet<Digest> } = {},
): Promise<void> {
  const written = new Set<string>();
  const dockerManifest: { Config: string; RepoTags: string[]; Layers: string[] }[] = [];
  const index: { mediaType: string; digest: Digest; size: number; annotations?: Record<string, string> }[] = [];
  const partial = options.omit !== undefined && options.omit.size > 0;
  for (const image of images) {
    const layerPaths: string[] = [];
    for (const layer of image.layers) {
      if (options.omit?.has(layer.diffId)) {
        layerPaths.push(blobPath(layer.diffId));
        continue;
      }
      if (layer.writtenAs !== undefined) {
        layerPaths.push(layer.writtenAs);
        continue;
      }
      const path = blobPath(layer.digest);
      layerPaths.push(path);
      if (written.has(path)) continue;
      written.add(path);
      await writer.addStream(
        path,
        layer.size,
        layer.open(),
        verifying(layer),
        progress(`writing ${layer.diffId.slice(7, 19)}`, layer.size),
      );
    }
    const configPath = blobPath(image.id);
    if (!written.has(configPath)) {
      written.add(configPath);
      await writer.addBuffer(configPath, image.configBytes);
    }
    dockerManifest.push({ Config: configPath, RepoTags: image.tags, Layers: layerPaths });
    if (partial) continue;
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: image.id, size: image.configBytes.length },
        layers: image.layers.map((l) => ({ mediaType: LAYER_TYPES[l.compression], digest: l.digest, size: l.size })),
      }),
    );
    const manifestDigest = sha256(manifest);
    if (!written.has(blobPath(manifestDigest))) {
      written.add(blobPath(manifestDigest));
      await writer.addBuffer(blobPath(manifestDigest), manifest);
    }
    const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: manifest.length };
    if (image.tags.length === 0) index.push(descriptor);
    for (const tag of image.tags) index.push({ ...descriptor, annotations: annotationsFor(tag) });
  }
  if (!partial) {
    await writer.addBuffer(
      'index.json',
      JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: index }),
    );
    await writer.addBuffer('oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  }
  await writer.addBuffer('manifest.json', JSON.stringify(dockerManifest));
}
