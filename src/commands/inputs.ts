import { stat } from 'node:fs/promises';
import type { Catalog } from '../archive/catalog.js';
import { openArchive, openSeekableArchive } from '../archive/open.js';
import { readImages, verifyLayers, type ArchiveContents } from '../archive/read.js';
import type { Engine, EngineChoice, EngineImage, EngineName } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { inspectRegistryImage, type RegistryOptions } from '../registry/connect.js';
import { isRegistryReference, REGISTRY_PREFIX } from '../registry/remote-image.js';
import { ArchiveError, UsageError } from '../errors.js';
import type { Image } from '../image/image.js';
import type { Digest } from '../util/digest.js';

export interface InputOptions extends EngineChoice, RegistryOptions {}

/**
 * What an INPUT argument names: an archive file or layout directory (optionally one image in
 * it, skopeo's `PATH:REF`), or a local image of an engine (`docker-daemon:`/`containers-storage:`
 * pin the engine).
 */
type InputSpec =
  | { kind: 'archive'; path: string; image?: string }
  | { kind: 'engine'; ref: string; engine?: EngineName }
  /** `docker://HOST/REPO:TAG`: read through the registry's API (manifest and config only). */
  | { kind: 'registry'; ref: string };

type ResolvedInput =
  | { kind: 'archive'; source: string; catalog: Catalog; contents: ArchiveContents; images: ArchiveContents['images'] }
  | { kind: 'engine'; source: string; engine: Engine; ref: string; image: EngineImage; images: [] }
  /** `docker://HOST/REPO:TAG`: what its manifest and config tell; no layer bytes. */
  | { kind: 'registry'; source: string; image: EngineImage; images: [] };

/** skopeo's transports that ddiff reads; the others name registries or formats it does not. */
const ARCHIVE_TRANSPORTS = new Set(['docker-archive', 'oci-archive', 'oci']);
const UNSUPPORTED_TRANSPORTS = new Set(['ostree', 'sif', 'tarball', 'atomic']);

function splitRef(rest: string): { path: string; image?: string } {
  const colon = rest.indexOf(':');
  if (colon < 0) return { path: rest };
  const image = rest.slice(colon + 1);
  return image ? { path: rest.slice(0, colon), image } : { path: rest.slice(0, colon) };
}

/** Reads a transport prefix (`docker-archive:x.tar:app:1`, `oci:dir`, `docker-daemon:app:1` …); undefined for a bare argument. */
function parseTransport(input: string): InputSpec | undefined {
  const match = /^([a-z][a-z-]*):(.*)$/s.exec(input);
  if (!match) return undefined;
  const [, transport, rest] = match as unknown as [string, string, string];
  if (ARCHIVE_TRANSPORTS.has(transport)) {
    const spec = splitRef(rest);
    if (!spec.path) throw new UsageError(`${input}: ${transport}: needs a path`);
    return { kind: 'archive', ...spec };
  }
  if (transport === 'dir') return { kind: 'archive', path: rest };
  if (transport === 'docker-daemon') return { kind: 'engine', ref: rest, engine: 'docker' };
  // containers-storage:[driver@root+run]REF
  if (transport === 'containers-storage') return { kind: 'engine', ref: rest.replace(/^\[[^\]]*\]/, ''), engine: 'podman' };
  if (UNSUPPORTED_TRANSPORTS.has(transport)) {
    throw new UsageError(
      `${input}: the ${transport}: transport is not read by ddiff (it takes docker-archive:, oci-archive:, oci:, dir:, docker-daemon:, containers-storage: and docker://); copy the image to an archive first, e.g. skopeo copy ${input} docker-archive:image.tar`,
    );
  }
  return undefined;
}

/** What `input` names: a file or directory on disk first, then a transport prefix, then a guess from its shape. */
export async function classifyInput(input: string): Promise<InputSpec> {
  if (input === '-') return { kind: 'archive', path: input };
  if (isRegistryReference(input)) return { kind: 'registry', ref: input };
  const onDisk = await stat(input).then(
    () => true,
    () => false,
  );
  if (onDisk) return { kind: 'archive', path: input };
  const transport = parseTransport(input);
  if (transport) return transport;
  // Not on disk: a path-like or archive-named argument is a missing file, the rest image references.
  const looksLikeFile = /^\.{0,2}\//.test(input) || /\.(tar|tar\.gz|tgz|tar\.zst|tar\.xz|tar\.bz2|ddiff)$/.test(input);
  return looksLikeFile ? { kind: 'archive', path: input } : { kind: 'engine', ref: input };
}

/** The engine an input's transport pins, else the one the options choose. */
export function engineFor(spec: InputSpec & { kind: 'engine' }, options: EngineChoice, noEngineHint?: string): Engine {
  return chooseEngine({ ...options, ...(spec.engine ? { engine: spec.engine } : {}) }, noEngineHint);
}

function tagMatches(tag: string, wanted: string): boolean {
  const withTag = /:[^/]*$/.test(wanted) ? wanted : `${wanted}:latest`;
  const short = (name: string) => name.replace(/^(docker\.io\/)?(library\/)?/, '').replace(/^localhost\//, '');
  return tag === wanted || tag === withTag || short(tag) === short(withTag);
}

/** The images of an archive that `PATH:REF` names (all of them without a REF); none is an error listing the tags present. */
export function imagesNamed(images: Image[], wanted: string | undefined, source: string): Image[] {
  if (wanted === undefined) return images;
  const hit = images.filter((i) => i.tags.some((t) => tagMatches(t, wanted)) || i.id === wanted);
  if (hit.length > 0) return hit;
  const present = images.flatMap((i) => i.tags);
  throw new ArchiveError(source, `no image '${wanted}' in it (it has ${present.length ? present.join(', ') : 'untagged images only'})`);
}

/** Opens an archive (reading its metadata, and verifying its layers when asked) or inspects a reference. */
export async function resolveInput(input: string, options: InputOptions & { verify: boolean }): Promise<ResolvedInput> {
  const spec = await classifyInput(input);
  if (spec.kind === 'registry') {
    const remote = await inspectRegistryImage(input, options);
    const image = { id: remote.id, tags: [input.slice(REGISTRY_PREFIX.length)], platform: remote.platform, diffIds: remote.diffIds };
    return { kind: 'registry', source: input, image, images: [] };
  }
  if (spec.kind === 'archive') {
    const catalog = await openArchive(spec.path);
    const contents = await readImages(catalog);
    const images = imagesNamed(contents.images, spec.image, catalog.source);
    if (options.verify) await verifyLayers(catalog, images);
    return { kind: 'archive', source: catalog.source, catalog, contents, images };
  }
  const engine = engineFor(spec, options);
  const image = await engine.inspect(spec.ref);
  return { kind: 'engine', source: `${engine.name}:${spec.ref}`, engine, ref: spec.ref, image, images: [] };
}

/**
 * Opens a target so its layer bytes can be read: archives as they are, references via `save`,
 * which may leave out the layers in `baseHas` (a diff does not read them; have-lists read all).
 */
export async function openTarget(
  input: string,
  spoolDir: string,
  options: InputOptions,
  baseHas: Promise<ReadonlySet<Digest>> = Promise.resolve(new Set()),
): Promise<{ catalog: Catalog; image?: string; engine?: string }> {
  const spec = await classifyInput(input);
  if (spec.kind === 'archive') {
    const catalog = await openSeekableArchive(spec.path, spoolDir);
    return spec.image === undefined ? { catalog } : { catalog, image: spec.image };
  }
  if (spec.kind === 'registry') {
    throw new UsageError(
      `${input}: a registry image is read only as a base (its layers are not downloaded); pull it, or copy it to an archive with skopeo`,
    );
  }
  const engine = engineFor(spec, options);
  const inspect = engine.inspect(spec.ref);
  const passOver = Promise.all([inspect, baseHas]).then(([image, has]) => ({ diffIds: image.diffIds, baseHas: has }));
  passOver.catch(() => undefined); // reported by whoever awaits the inspect and the base
  // Side by side; for a missing image the inspect's error is the clear one, the save's the engine's own.
  const [inspected, saved] = await Promise.allSettled([inspect, engine.saveToRead(spec.ref, spoolDir, passOver)]);
  if (inspected.status === 'rejected') throw inspected.reason;
  if (saved.status === 'rejected') throw saved.reason;
  return { catalog: saved.value, engine: engine.name };
}
