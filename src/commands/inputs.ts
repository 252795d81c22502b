import { stat } from 'node:fs/promises';
import type { Catalog } from '../archive/catalog.js';
import { openArchive } from '../archive/open.js';
import { readImages, verifyLayers, type ArchiveContents } from '../archive/read.js';
import type { Engine, EngineChoice, EngineImage } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { inspectRegistryImage, type RegistryOptions } from '../registry/connect.js';
import { isRegistryReference, REGISTRY_PREFIX } from '../registry/remote-image.js';

export interface InputOptions extends EngineChoice, RegistryOptions {}

type ResolvedInput =
  | { kind: 'archive'; source: string; catalog: Catalog; contents: ArchiveContents; images: ArchiveContents['images'] }
  | { kind: 'engine'; source: string; engine: Engine; image: EngineImage; images: [] }
  /** `docker://HOST/REPO:TAG`: what its manifest and config tell; no layer bytes. */
  | { kind: 'registry'; source: string; image: EngineImage; images: [] };

/** True when `input` names an archive file or directory (or `-`), false for an image reference. */
export async function isArchivePath(input: string): Promise<boolean> {
  if (input === '-') return true;
  try {
    await stat(input);
    return true;
  } catch {
    // Not on disk: a path-like or archive-named argument is a missing file, the rest image references.
    return /^\.{0,2}\//.test(input) || /\.(tar|tar\.gz|tgz|tar\.zst|tar\.xz|tar\.bz2|ddiff)$/.test(input);
  }
}

/** Opens an archive (reading its metadata, and verifying its layers when asked) or inspects a reference. */
export async function resolveInput(input: string, options: InputOptions & { verify: boolean }): Promise<ResolvedInput> {
  if (isRegistryReference(input)) {
    const remote = await inspectRegistryImage(input, options);
    const image = { id: remote.id, tags: [input.slice(REGISTRY_PREFIX.length)], platform: remote.platform, diffIds: remote.diffIds };
    return { kind: 'registry', source: input, image, images: [] };
  }
  if (await isArchivePath(input)) {
    const catalog = await openArchive(input);
    const contents = await readImages(catalog);
    if (options.verify) await verifyLayers(catalog, contents.images);
    return { kind: 'archive', source: catalog.source, catalog, contents, images: contents.images };
  }
  const engine = chooseEngine(options);
  const image = await engine.inspect(input);
  return { kind: 'engine', source: `${engine.name}:${input}`, engine, image, images: [] };
}
