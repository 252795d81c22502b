import { MediaTypes, OCI_LAYER_TYPES } from '../image/media-types.js';
import { normalizedName } from '../image/reference.js';
import type { Compression } from '../util/compression.js';
import { sha256, type Digest } from '../util/digest.js';

/** A blob as an archive's manifests describe it. */
export interface PlacedBlob {
  digest: Digest;
  size: number;
  compression: Compression;
  /** The media type the reader knows the blob by (layers it holds already). */
  mediaType?: string;
}

/**
 * The OCI ref-name annotation wants the tag alone; containerd's wants the full name, which
 * containerd keeps exactly as written (so, for it, normalized as Kubernetes looks names up).
 */
function annotationsFor(tag: string, normalize: boolean): Record<string, string> {
  const colon = tag.lastIndexOf(':');
  const bare = colon > tag.lastIndexOf('/') ? tag.slice(colon + 1) : 'latest';
  return { 'io.containerd.image.name': normalize ? normalizedName(tag) : tag, 'org.opencontainers.image.ref.name': bare };
}

/**
 * The OCI layout half of an image archive: one manifest per image (a blob, named by its
 * digest), `index.json` naming each by its tags, and `oci-layout`.
 */
export function ociHalf(
  images: { image: { id: Digest; configBytes: Buffer; tags: string[] }; layers: PlacedBlob[] }[],
  normalizeNames: boolean,
): { manifests: Buffer[]; index: string; layout: string } {
  const manifests: Buffer[] = [];
  const index: { mediaType: string; digest: Digest; size: number; annotations?: Record<string, string> }[] = [];
  for (const { image, layers } of images) {
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: image.id, size: image.configBytes.length },
        layers: layers.map((l) => ({ mediaType: l.mediaType ?? OCI_LAYER_TYPES[l.compression], digest: l.digest, size: l.size })),
      }),
    );
    manifests.push(manifest);
    const descriptor = { mediaType: MediaTypes.ociManifest, digest: sha256(manifest), size: manifest.length };
    if (image.tags.length === 0) index.push(descriptor);
    for (const tag of image.tags) index.push({ ...descriptor, annotations: annotationsFor(tag, normalizeNames) });
  }
  return {
    manifests,
    index: JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: index }),
    layout: JSON.stringify({ imageLayoutVersion: '1.0.0' }),
  };
}
