import { createWriteStream } from 'node:fs';
import { PassThrough, type Writable } from 'node:stream';
import type { Catalog } from '../archive/catalog.js';
import { openSeekableArchive } from '../archive/open.js';
import { readImages } from '../archive/read.js';
import { copyLayersFrom } from '../archive/copy-layers.js';
import { writeImageArchive, writeImagesInto, type ArchiveImage, type SourceLayer } from '../archive/write-archive.js';
import { TarWriter } from '../tar/writer.js';
import type { BundleImage } from '../bundle/format.js';
import { blobPath } from '../archive/formats/oci-layout.js';
import { openBundle, verifyBundle, type Bundle } from '../bundle/read.js';
import { Engine, type EngineChoice, type EngineImage } from '../engine/engine.js';
import { DdiffError, EngineError, MissingLayersError } from '../errors.js';
import { atomicOutput, tempDir } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import { isArchivePath } from './inputs.js';
import type { Reporter } from './diff.js';

export interface LoadOptions extends EngineChoice {
  base?: string;
  output?: string;
  image?: string;
  json?: boolean;
  /** false (--no-fast-path): always send the complete image, even to Docker's classic store. */
  fastPath?: boolean;
}

/** Where the layers the bundle leaves out come from. */
type BaseSource =
  | { kind: 'none' }
  | { kind: 'archive'; name: string; catalog: Catalog; layers: Map<Digest, SourceLayer> }
  | { kind: 'engine'; name: string; engine: Engine; image: EngineImage };

function missingError(needed: Digest[], have: Set<Digest>, tried: string): MissingLayersError | undefined {
  const missing = needed.filter((d) => !have.has(d));
  if (missing.length === 0) return undefined;
  return new MissingLayersError(`base ${tried} lacks ${missing.length} layer(s) the bundle needs: ${missing.join(', ')}`);
}

async function archiveBase(input: string, spoolDir: string): Promise<BaseSource & { kind: 'archive' }> {
  const catalog = await openSeekableArchive(input, spoolDir);
  const { images } = await readImages(catalog);
  const layers = new Map<Digest, SourceLayer>();
  for (const image of images) {
    for (const layer of image.layers) {
      if (layers.has(layer.diffId)) continue;
      layers.set(layer.diffId, { ...layer, source: catalog.source, open: () => catalog.open(layer.path) });
    }
  }
  return { kind: 'archive', name: input, catalog, layers };
}

/** Finds a local image holding every needed diffID: the recorded base first, then all images. */
async function findEngineBase(engine: Engine, candidates: string[], needed: Digest[]): Promise<EngineImage | undefined> {
  const holds = (image: EngineImage) => !missingError(needed, new Set(image.diffIds), image.id);
  for (const ref of new Set(candidates)) {
    const image = await engine.inspect(ref).catch(() => undefined);
    if (image && holds(image)) return image;
  }
  return (await engine.localImages()).find(holds);
}

/**
 * Where the base layers come from: `--base`; else, when loading into Docker, a local image
 * holding them (that allows the fast path); else the archive recorded at diff time, if it is
 * here; else any local image holding them.
 */
async function chooseBase(
  bundle: Bundle,
  needed: Digest[],
  options: LoadOptions,
  spoolDir: string,
  engine: () => Engine,
): Promise<BaseSource> {
  if (needed.length === 0) return { kind: 'none' };
  const recorded = bundle.metadata.base.reference;
  const explicit = options.base;
  if (explicit !== undefined && (await isArchivePath(explicit))) {
    const base = await archiveBase(explicit, spoolDir);
    const error = missingError(needed, new Set(base.layers.keys()), explicit);
    if (error) throw error;
    return base;
  }
  const recordedArchive = async (): Promise<BaseSource | undefined> => {
    if (explicit !== undefined || recorded === undefined || recorded === '-' || !(await isArchivePath(recorded))) return undefined;
    const base = await archiveBase(recorded, spoolDir).catch(() => undefined);
    return base && !missingError(needed, new Set(base.layers.keys()), recorded) ? base : undefined;
  };
  const candidates = [...bundle.metadata.base.ids, ...bundle.metadata.base.tags, ...(recorded ? [recorded] : [])];
  const engineBase = async (eng: Engine): Promise<BaseSource | undefined> => {
    const image = await findEngineBase(eng, candidates, needed);
    return image ? { kind: 'engine', name: image.tags[0] ?? image.id, engine: eng, image } : undefined;
  };

  if (explicit === undefined && options.output === undefined && options.fastPath !== false) {
    const eng = (() => {
      try {
        return engine();
      } catch {
        return undefined;
      }
    })();
    const local = eng?.name === 'docker' ? await engineBase(eng) : undefined;
    if (local) return local;
  }
  const archived = await recordedArchive();
  if (archived) return archived;
  let eng: Engine;
  try {
    eng = engine();
  } catch (error) {
    throw new MissingLayersError(
      `the bundle needs ${needed.length} base layer(s) and no base was found: pass --base ARCHIVE (no engine: ${(error as Error).message})`,
    );
  }
  if (explicit !== undefined) {
    const image = await eng.inspect(explicit);
    const error = missingError(needed, new Set(image.diffIds), `${eng.name}:${explicit}`);
    if (error) throw error;
    return { kind: 'engine', name: explicit, engine: eng, image };
  }
  const local = await engineBase(eng);
  if (!local) {
    throw new MissingLayersError(
      `no local ${eng.name} image holds the base layers the bundle needs (tried ${candidates.join(', ') || 'all local images'}): missing ${needed.join(', ')}; pass --base`,
    );
  }
  return local;
}

/** Finds (and checks) the base for a bundle's needed layers; for `verify`. */
export async function findBase(bundle: Bundle, needed: Digest[], options: LoadOptions): Promise<BaseSource> {
  const spool = await tempDir('ddiff-verify-');
  try {
    let engine: Engine | undefined;
    return await chooseBase(bundle, needed, options, spool.path, () => (engine ??= Engine.choose(options)));
  } finally {
    await spool.dispose();
  }
}

/** Docker's classic store loads an archive without the files of layers whose chain it holds. */
function fastPathOmits(images: BundleImage[], base: EngineImage): Set<Digest> | undefined {
  const omit = new Set<Digest>();
  for (const image of images) {
    for (const [i, layer] of image.layers.entries()) {
      if (layer.blob) continue;
      if (base.diffIds[i] !== layer.diffId || image.layers.slice(0, i).some((l) => l.blob)) return undefined;
      omit.add(layer.diffId);
    }
  }
  return omit;
}

function bundleLayer(bundle: Bundle, diffId: Digest, blob: Digest): SourceLayer {
  const entry = bundle.catalog.entry(blobPath(blob));
  const meta = bundle.metadata.blobs.find((b) => b.digest === blob);
  const compression = meta?.mediaType.endsWith('+zstd') ? 'zstd' : meta?.mediaType.endsWith('+gzip') ? 'gzip' : 'none';
  return { diffId, digest: blob, size: entry.size, compression, source: bundle.path, open: () => bundle.catalog.open(entry.name) };
}

/** The archive to write: from the bundle plus the base, one of three ways. */
function planArchive(
  bundle: Bundle,
  images: BundleImage[],
  base: BaseSource,
  needed: Digest[],
  omit: Set<Digest> | undefined,
): (out: Writable) => Promise<void> {
  const imagesWith = async (baseLayer: (diffId: Digest) => SourceLayer): Promise<ArchiveImage[]> =>
    Promise.all(
      images.map(async (image) => ({
        id: image.id,
        configBytes: await bundle.catalog.bytes(blobPath(image.id)),
        tags: image.tags,
        layers: image.layers.map((l) => (l.blob ? bundleLayer(bundle, l.diffId, l.blob) : baseLayer(l.diffId))),
      })),
    );
  if (base.kind === 'engine' && !omit) {
    // Full rebuild from an engine's base: its `save` streams straight into the new archive.
    const { engine, image, name } = base;
    return async (out) => {
      const writer = new TarWriter(out);
      try {
        const saved = engine.saveStream(image.id);
        let copied;
        try {
          copied = await copyLayersFrom(saved.stream, writer, `${engine.name} save ${name}`);
        } catch (error) {
          // A save that broke off (killed, or failing with a message) leaves a truncated
          // stream: the engine's own failure is the cause to report, not the truncation.
          if (saved.stream.readableEnded) await saved.done;
          throw error;
        }
        await saved.done;
        const missing = missingError(needed, new Set(copied.keys()), `${engine.name}:${name}`);
        if (missing) throw missing;
        await writeImagesInto(writer, await imagesWith((diffId) => copied.get(diffId)!));
        await writer.finish();
      } catch (error) {
        writer.destroy(error as Error);
        throw error;
      }
    };
  }
  // From a base archive, or (fast path) with the base layers left out for Docker to find.
  const omitted = (diffId: Digest): SourceLayer => ({
    diffId,
    digest: diffId,
    size: 0,
    compression: 'none',
    open: () => {
      throw new Error(`layer ${diffId} is left out of the archive`);
    },
  });
  return async (out) => {
    const archiveImages = await imagesWith((diffId) => (base.kind === 'archive' ? base.layers.get(diffId)! : omitted(diffId)));
    await writeImageArchive(out, archiveImages, omit ? { omit } : {});
  };
}

/** Feeds the archive to the engine's `load`; resolves with what the engine printed. */
async function loadInto(engine: Engine, write: (out: Writable) => Promise<void>): Promise<string> {
  const stream = new PassThrough();
  const loading = engine.load(stream);
  loading.catch(() => undefined);
  // An engine that quits before reading the whole archive (it refused it) leaves nobody
  // reading the stream: the writer would wait forever. Its exit ends the write.
  const quit = loading.then(() => {
    throw new EngineError(`${engine.name} load exited before reading the whole archive`);
  });
  quit.catch(() => undefined);
  const writing = write(stream);
  writing.catch(() => undefined);
  try {
    await Promise.race([writing, quit]);
  } catch (error) {
    stream.destroy();
    await loading.catch(() => undefined);
    throw error;
  }
  return loading;
}

/** Writes the archive to a file, under a temporary name until it is complete. */
async function writeFile(path: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const out = atomicOutput(path);
  try {
    await write(createWriteStream(out.tempPath));
    await out.commit();
  } catch (error) {
    await out.abort();
    throw error;
  }
}

function selectBundleImages(bundle: Bundle, wanted: string | undefined): BundleImage[] {
  const all = bundle.metadata.images;
  if (wanted === undefined) return all;
  const images = all.filter((i) => i.tags.includes(wanted) || i.id === wanted || i.id.startsWith(`sha256:${wanted}`));
  if (images.length === 0) throw new DdiffError(`${bundle.path}: no image '${wanted}' in the bundle`);
  return images;
}

/** `ddiff load BUNDLE`: verify, find the base, rebuild the image and load it (or write it). */
export async function load(bundlePath: string, options: LoadOptions, report: Reporter): Promise<void> {
  const bundle = await openBundle(bundlePath);
  // Blobs are verified while the base is looked up; nothing is written before both are done.
  const verified = verifyBundle(bundle);
  verified.catch(() => undefined);
  const images = selectBundleImages(bundle, options.image);
  const needed = [...new Set(images.flatMap((i) => i.layers.filter((l) => !l.blob).map((l) => l.diffId)))];

  let engine: Engine | undefined;
  const getEngine = () => (engine ??= Engine.choose(options));
  const spool = await tempDir('ddiff-load-');
  try {
    const [verifiedResult, baseResult] = await Promise.allSettled([verified, chooseBase(bundle, needed, options, spool.path, getEngine)]);
    if (verifiedResult.status === 'rejected') throw verifiedResult.reason;
    if (baseResult.status === 'rejected') throw baseResult.reason;
    const base = baseResult.value;
    let omit: Set<Digest> | undefined;
    if (base.kind === 'engine' && options.output === undefined && options.fastPath !== false) {
      const target = getEngine();
      if (target.name === 'docker' && base.engine.name === 'docker' && (await target.hasClassicStore())) {
        omit = fastPathOmits(images, base.image);
      }
    }
    const write = planArchive(bundle, images, base, needed, omit);
    const summary = {
      images: images.map((i) => ({ id: i.id, tags: i.tags })),
      base: base.kind === 'none' ? null : base.name,
      mode: omit ? 'fast-path' : 'full',
      output: options.output ?? `${getEngine().name} load`,
    };
    if (options.output === '-') {
      await write(process.stdout);
      return;
    }
    if (options.output !== undefined) {
      await writeFile(options.output, write);
    } else {
      const printed = await loadInto(getEngine(), write);
      if (!options.json && printed.trim()) report.out(printed.trim());
    }
    if (options.json) report.out(JSON.stringify(summary, null, 2));
    else if (options.output !== undefined) report.out(`Wrote ${options.output} (${summary.mode}; ${images.length} image(s))`);
  } finally {
    await spool.dispose();
  }
}
