import type { Bundle } from '../bundle/read.js';
import { openSeekableArchive } from '../archive/open.js';
import { readImages } from '../archive/read.js';
import type { Engine, EngineImage } from '../engine/engine.js';
import { MissingLayersError, UsageError } from '../errors.js';
import { isRegistryReference } from '../registry/remote-image.js';
import type { Layer } from '../image/layer.js';
import { classifyInput, engineFor, imagesNamed } from '../commands/inputs.js';
import type { Digest } from '../util/digest.js';

/** Where the layers a bundle leaves out come from. */
export type BaseSource =
  | { kind: 'none' }
  | { kind: 'archive'; name: string; layers: Map<Digest, Layer> }
  /** Local images of one engine that together hold every needed layer (saved as one stream). */
  | { kind: 'engine'; name: string; engine: Engine; images: EngineImage[] };

interface BaseOptions {
  /** `--base`: an archive or an image reference. */
  base?: string;
  /** The base will be used for Docker's fast path if it can: prefer a local image then. */
  preferEngine: boolean;
}

function missingFrom(needed: Digest[], have: Iterable<Digest>): Digest[] {
  const set = new Set(have);
  return needed.filter((d) => !set.has(d));
}

function lacks(tried: string, missing: Digest[]): MissingLayersError {
  return new MissingLayersError(`base ${tried} lacks ${missing.length} layer(s) the bundle needs: ${missing.join(', ')}`);
}

async function archiveBase(
  input: string,
  spec: { path: string; image?: string },
  spoolDir: string,
): Promise<BaseSource & { kind: 'archive' }> {
  const catalog = await openSeekableArchive(spec.path, spoolDir);
  const { images } = await readImages(catalog);
  const layers = new Map<Digest, Layer>();
  for (const layer of imagesNamed(images, spec.image, catalog.source).flatMap((image) => image.layers))
    if (!layers.has(layer.diffId)) layers.set(layer.diffId, layer);
  return { kind: 'archive', name: input, layers };
}

/**
 * Local images holding every needed layer: one image when one does (the recorded base first),
 * else the fewest images that together do (greedy cover), as a have-list made from all local
 * images allows. Undefined when all local images together still lack some layer.
 */
async function findEngineImages(engine: Engine, candidates: string[], needed: Digest[]): Promise<EngineImage[] | undefined> {
  const holdsAll = (image: EngineImage) => missingFrom(needed, image.diffIds).length === 0;
  for (const ref of new Set(candidates)) {
    const image = await engine.inspect(ref).catch(() => undefined);
    if (image && holdsAll(image)) return [image];
  }
  const local = await engine.localImages();
  const one = local.find(holdsAll);
  if (one) return [one];
  const chosen: EngineImage[] = [];
  let missing = needed;
  while (missing.length > 0) {
    const best = local
      .map((image) => ({ image, gain: missing.length - missingFrom(missing, image.diffIds).length }))
      .sort((a, b) => b.gain - a.gain)[0];
    if (!best || best.gain === 0) return undefined;
    chosen.push(best.image);
    missing = missingFrom(missing, best.image.diffIds);
  }
  return chosen;
}

function engineSource(engine: Engine, images: EngineImage[]): BaseSource {
  const name = images.map((image) => image.tags[0] ?? image.id).join(' + ');
  return { kind: 'engine', name, engine, images };
}

/**
 * Where the base layers come from: `--base`; else, when the fast path may be used, a local
 * image holding them; else the archive recorded at diff time, if it is here; else local
 * images holding them.
 */
export async function chooseBase(
  bundle: Bundle,
  needed: Digest[],
  options: BaseOptions,
  spoolDir: string,
  engine: () => Engine,
): Promise<BaseSource> {
  if (needed.length === 0) return { kind: 'none' };
  const recorded = bundle.metadata.base.reference;
  const explicit = options.base;
  if (explicit !== undefined && isRegistryReference(explicit)) {
    throw new UsageError(`--base ${explicit}: a registry base serves only load --to (its layers are mounted there, never downloaded)`);
  }
  const explicitSpec = explicit === undefined ? undefined : await classifyInput(explicit);
  if (explicit !== undefined && explicitSpec?.kind === 'archive') {
    const base = await archiveBase(explicit, explicitSpec, spoolDir);
    const missing = missingFrom(needed, base.layers.keys());
    if (missing.length > 0) throw lacks(explicit, missing);
    return base;
  }
  if (explicit !== undefined && explicitSpec?.kind === 'engine') {
    const eng = explicitSpec.engine ? engineFor(explicitSpec, { engine: explicitSpec.engine }) : engine();
    const image = await eng.inspect(explicitSpec.ref);
    const missing = missingFrom(needed, image.diffIds);
    if (missing.length > 0) throw lacks(`${eng.name}:${explicit}`, missing);
    return engineSource(eng, [image]);
  }
  const candidates = [...bundle.metadata.base.ids, ...bundle.metadata.base.tags, ...(recorded ? [recorded] : [])];
  if (options.preferEngine) {
    const eng = tryEngine(engine);
    // Every engine has a fast path (Docker's classic store, Podman's storage, containerd's content store).
    const images = eng ? await findEngineImages(eng, candidates, needed) : undefined;
    if (eng && images) return engineSource(eng, images);
  }
  const recordedSpec = recorded === undefined || recorded === '-' ? undefined : await classifyInput(recorded).catch(() => undefined);
  if (recorded !== undefined && recordedSpec?.kind === 'archive') {
    const base = await archiveBase(recorded, recordedSpec, spoolDir).catch(() => undefined);
    if (base && missingFrom(needed, base.layers.keys()).length === 0) return base;
  }
  let eng: Engine;
  try {
    eng = engine();
  } catch (error) {
    throw new MissingLayersError(
      `${bundle.path}: needs ${needed.length} base layer(s) (${needed.join(', ')}) and no base was found: pass --base ARCHIVE (no engine: ${(error as Error).message})`,
    );
  }
  const images = await findEngineImages(eng, candidates, needed);
  if (!images) {
    throw new MissingLayersError(
      `no local ${eng.name} images hold the base layers the bundle needs (tried ${candidates.join(', ') || 'all local images'}): missing ${needed.join(', ')}; pass --base`,
    );
  }
  return engineSource(eng, images);
}

function tryEngine(engine: () => Engine): Engine | undefined {
  try {
    return engine();
  } catch {
    return undefined;
  }
}
