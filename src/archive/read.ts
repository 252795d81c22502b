import pLimit from 'p-limit';
import type { Image } from '../image/image.js';
import type { Layer } from '../image/layer.js';
import { startStep } from '../util/progress.js';
import type { Catalog } from './catalog.js';
import { isContentAddressed } from '../image/blob-names.js';
import { readDockerArchive } from './formats/docker-archive.js';
import { readDockerDir } from './formats/docker-dir.js';
import { readOciLayout, type AbsentManifest } from './formats/oci-layout.js';
import { DigestMismatchError } from '../errors.js';

type Layout = 'docker-archive' | 'oci-layout' | 'docker-dir';

export interface ArchiveContents {
  layout: Layout;
  images: Image[];
  /** Manifests an index names whose blobs the archive does not hold (other platforms). */
  absent: AbsentManifest[];
}

/** Finds the layout of a catalog and reads every image in it (metadata only). */
export async function readImages(catalog: Catalog): Promise<ArchiveContents> {
  if (catalog.has('manifest.json')) {
    const manifest = await catalog.readJson('manifest.json');
    if (Array.isArray(manifest)) {
      const images = await readDockerArchive(catalog, manifest);
      if (!catalog.has('index.json')) return { layout: 'docker-archive', images, absent: [] };
      // Docker ≥ 25 and containerd exports are OCI layouts too, and their manifest.json may
      // name only the host platform (ctr export --all-platforms): the index's other images
      // are in the archive as well.
      const oci = await readOciLayout(catalog, await catalog.readJson('index.json'));
      const ids = new Set(images.map((image) => image.id));
      for (const image of oci.images) {
        if (!ids.has(image.id)) images.push(image);
        ids.add(image.id);
      }
      return { layout: 'docker-archive', images, absent: oci.absent };
    }
    if (!catalog.has('index.json')) {
      return { layout: 'docker-dir', images: await readDockerDir(catalog, manifest), absent: [] };
    }
  }
  if (catalog.has('index.json')) {
    const { images, absent } = await readOciLayout(catalog, await catalog.readJson('index.json'));
    return { layout: 'oci-layout', images, absent };
  }
  const hint = catalog.names().length === 0 ? 'it holds no entries' : 'no manifest.json or index.json';
  throw catalog.fail(`not an image archive (${hint})`);
}

/**
 * Reads every layer's bytes once and checks them: the stored digest against the digest the
 * archive records, and the uncompressed digest against the config's diffID wherever it is
 * computed (uncompressed layers, and compressed layers no manifest digest vouches for).
 */
export async function verifyLayers(catalog: Catalog, images: Image[], concurrency = 2): Promise<void> {
  const limit = pLimit(concurrency);
  const layers = [...new Map(images.flatMap((image) => image.layers.map((l) => [`${l.path}\0${l.diffId}`, l] as const))).values()];
  const step = startStep(
    'verifying',
    layers.map((l) => l.size),
  );
  const check = async (layer: Layer, index: number) => {
    const vouched = isContentAddressed(layer.path);
    const facts = await catalog.facts(layer.path, layer.compression !== 'none' && !vouched);
    step.done(index, layer.size);
    const name = `layer '${layer.path}' (diffID ${layer.diffId})`;
    if (facts.digest !== layer.digest) {
      throw new DigestMismatchError(catalog.source, `${name} is corrupt: its bytes hash to ${facts.digest}, expected ${layer.digest}`);
    }
    if (facts.diffId !== undefined && facts.diffId !== layer.diffId) {
      throw new DigestMismatchError(catalog.source, `${name} is corrupt: its uncompressed bytes hash to ${facts.diffId}`);
    }
  };
  try {
    await Promise.all(layers.map((layer, index) => limit(() => check(layer, index))));
  } finally {
    step.finish();
  }
}
