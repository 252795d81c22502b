import type { Image } from '../../image/image.js';
import type { Catalog } from '../catalog.js';
import { buildImage, isRecord, optionalDigest, type LayerRef } from './build-image.js';

/**
 * `docker save` / `podman save` archives: a `manifest.json` array of {Config, RepoTags,
 * Layers}. Covers Docker ≤ 24 (`<id>/layer.tar`), Docker ≥ 25 and containerd exports (paths
 * into `blobs/sha256/`), containers/image (`<diffid>.tar`, symlinked legacy dirs) and kaniko.
 */
export async function readDockerArchive(catalog: Catalog, manifest: unknown[]): Promise<Image[]> {
  const images: Image[] = [];
  for (const [i, item] of manifest.entries()) {
    const where = `manifest.json entry ${i + 1}`;
    if (!isRecord(item) || typeof item.Config !== 'string' || !Array.isArray(item.Layers)) {
      throw catalog.fail(`${where} lacks Config or Layers`);
    }
    const sources = isRecord(item.LayerSources) ? item.LayerSources : {};
    const layers: LayerRef[] = item.Layers.map((path, j) => {
      if (typeof path !== 'string') throw catalog.fail(`${where}: layer ${j + 1} is not a path`);
      return { path };
    });
    const tags = Array.isArray(item.RepoTags) ? item.RepoTags.filter((t): t is string => typeof t === 'string') : [];
    const image = await buildImage(catalog, { configPath: item.Config, layers, tags });
    // Docker 25 records the distribution descriptor of each layer it did not store plainly.
    image.layers = image.layers.map((layer) => {
      const source = sources[layer.diffId];
      if (!isRecord(source)) return layer;
      const mediaType = typeof source.mediaType === 'string' ? source.mediaType : layer.mediaType;
      const recorded = optionalDigest(source.digest);
      const digest = recorded && layer.path.endsWith(recorded.slice(7)) ? recorded : layer.digest;
      return { ...layer, mediaType, digest };
    });
    images.push(image);
  }
  return images;
}
