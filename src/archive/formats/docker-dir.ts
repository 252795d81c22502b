import type { Image } from '../../image/image.js';
import { hexOf, sha256 } from '../../util/digest.js';
import type { Catalog } from '../catalog.js';
import { readManifest } from './oci-layout.js';

/**
 * containers/image `dir:` layout (podman `--format docker-dir`, skopeo `dir:`): `manifest.json`
 * is one image manifest, and blobs are files named by their bare hex digest.
 */
export async function readDockerDir(catalog: Catalog, manifest: unknown): Promise<Image[]> {
  const bytes = await catalog.bytes('manifest.json');
  return [await readManifest(catalog, manifest, 'manifest.json', sha256(bytes), [], hexOf)];
}
