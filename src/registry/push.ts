import type { Readable } from 'node:stream';
import type { BlobDescriptor } from '../image/layer.js';
import { MediaTypes } from '../image/media-types.js';
import { sha256, type Digest } from '../util/digest.js';
import type { RegistryClient } from './client.js';

/** What a push sent: blobs uploaded (and their bytes), mounted from another repository, or found there already. */
export interface PushStats {
  uploaded: number;
  bytes: number;
  mounted: number;
  present: number;
}

export function emptyStats(): PushStats {
  return { uploaded: 0, bytes: 0, mounted: 0, present: 0 };
}

/** Where a missing blob can come from: repositories of the same registry that hold it, and its bytes here. */
interface BlobSource {
  mountFrom?: string[];
  body?: Buffer | (() => Readable);
}

/**
 * Makes `blob` present in `repository`: HEAD first (a retry after a broken push sends nothing
 * twice), then a cross-repository mount, then an upload. False when it is missing and there is
 * nothing to mount it from nor bytes to upload.
 */
export async function ensureBlob(
  client: RegistryClient,
  repository: string,
  blob: { digest: Digest; size: number },
  source: BlobSource,
  stats: PushStats,
): Promise<boolean> {
  if (await client.hasBlob(repository, blob.digest)) {
    stats.present += 1;
    return true;
  }
  for (const from of source.mountFrom ?? []) {
    if (from !== repository && (await client.mountBlob(repository, blob.digest, from))) {
      stats.mounted += 1;
      return true;
    }
  }
  if (source.body === undefined) return false;
  await client.uploadBlob(repository, blob, source.body);
  stats.uploaded += 1;
  stats.bytes += blob.size;
  return true;
}

/** Docker's layer media types and their OCI names (the blob is the same; an OCI manifest wants OCI names). */
const OCI_NAME: Record<string, string> = {
  'application/vnd.docker.image.rootfs.diff.tar': 'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.docker.image.rootfs.diff.tar.gzip': 'application/vnd.oci.image.layer.v1.tar+gzip',
};

/** The OCI image manifest of a config and its layers, as the bytes that are put (their digest is the manifest's). */
export function imageManifest(config: { digest: Digest; size: number }, layers: BlobDescriptor[]): { bytes: Buffer; digest: Digest } {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: OCI_NAME[l.mediaType] ?? l.mediaType, digest: l.digest, size: l.size })),
    }),
  );
  return { bytes, digest: sha256(bytes) };
}
