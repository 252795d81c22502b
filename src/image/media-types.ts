import type { Compression } from '../util/compression.js';

/** Every media type ddiff reads or writes, in one table. */
export const MediaTypes = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;

/** OCI layer media types by compression (bzip2/xz have none: labelled as plain tar, read by magic). */
export const OCI_LAYER_TYPES: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  bzip2: 'application/vnd.oci.image.layer.v1.tar',
  xz: 'application/vnd.oci.image.layer.v1.tar',
};

/** Docker's layer media types, for layers of docker-archives that record none. */
export const DOCKER_LAYER_TYPES: Record<Compression, string> = {
  none: 'application/vnd.docker.image.rootfs.diff.tar',
  gzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  bzip2: 'application/vnd.docker.image.rootfs.diff.tar',
  xz: 'application/vnd.docker.image.rootfs.diff.tar',
};

export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
