import { pipeline } from 'node:stream';
import type { BundleImage } from '../bundle/format.js';
import { type Bundle, bundleLayer } from '../bundle/read.js';
import type { Engine } from '../engine/engine.js';
import { mayBeLayer } from '../engine/save-stream.js';
import { MissingLayersError, RegistryError, UsageError } from '../errors.js';
import { blobPath, digestFromName } from '../image/blob-names.js';
import { type BlobDescriptor, type Layer, verifyingStored } from '../image/layer.js';
import { MediaTypes, OCI_LAYER_TYPES } from '../image/media-types.js';
import { type ImageReference, parseReference } from '../image/reference.js';
import type { RegistryClient } from '../registry/client.js';
import { connect, type RegistryOptions } from '../registry/connect.js';
import { emptyStats, ensureBlob, imageManifest, type PushStats } from '../registry/push.js';
import { isRegistryReference, parseRegistryReference, readRemoteImage } from '../registry/remote-image.js';
import { readTarStream } from '../tar/extract.js';
import { sha256, type Digest } from '../util/digest.js';
import { type BaseSource, chooseBase } from './base.js';
import { rebuildDeltaLayers } from './delta-layers.js';

interface RegistryLoadOptions extends RegistryOptions {
  to: string;
  base?: string;
}

/** A base layer the registry holds: its blob there and the repository it is in. */
interface HeldLayer {
  blob: BlobDescriptor;
  repository: string;
}

/** Base images the registry may hold: `--base docker://…`, the base recorded at diff time, and the base's tags on this registry. */
function baseCandidates(bundle: Bundle, target: ImageReference, base: string | undefined): ImageReference[] {
  const texts = [base, bundle.metadata.base.reference].filter((t): t is string => t !== undefined && isRegistryReference(t));
  const found = texts.map(parseRegistryReference);
  for (const tag of bundle.metadata.base.tags) {
    const slash = tag.indexOf('/');
    const first = slash === -1 ? '' : tag.slice(0, slash);
    const path = /[.:]/.test(first) || first === 'localhost' ? tag.slice(slash + 1) : tag;
    try {
      found.push(parseReference(`${target.domain}/${path}`));
    } catch {
      // not a name this registry can hold
    }
  }
  return found.filter((ref) => ref.domain === target.domain);
}

/** The base layers (by diffID) the registry already holds, read from the candidates' manifests; absent candidates are skipped. */
async function layersInRegistry(client: RegistryClient, candidates: ImageReference[]): Promise<Map<Digest, HeldLayer>> {
  const held = new Map<Digest, HeldLayer>();
  for (const ref of candidates) {
    const image = await readRemoteImage(client, ref).catch((error: unknown) => {
      if (error instanceof RegistryError && error.status === 404) return undefined;
      throw error;
    });
    image?.diffIds.forEach((diffId, i) => {
      if (!held.has(diffId)) held.set(diffId, { blob: image.layers[i]!, repository: ref.repository });
    });
  }
  return held;
}

function describe(layer: Layer): BlobDescriptor {
  return { digest: layer.digest, size: layer.size, mediaType: OCI_LAYER_TYPES[layer.compression] };
}

function uploadBody(layer: Layer) {
  return () => pipeline(layer.open(), verifyingStored(layer), () => undefined);
}

/**
 * Uploads the base layers an engine's `save` streams, as they pass (their digests are known
 * only at their ends): kept when they are needed, cancelled otherwise. `save` names layers by
 * their uncompressed digest (Docker, Podman) or, for containerd, by the blob its manifest names.
 */
async function uploadFromEngine(
  client: RegistryClient,
  repository: string,
  base: BaseSource & { kind: 'engine' },
  wanted: Set<Digest>,
  stats: PushStats,
): Promise<Map<Digest, BlobDescriptor>> {
  const diffIdOf = new Map<Digest, { diffId: Digest; mediaType: string }>();
  for (const image of base.images) {
    image.diffIds.forEach((diffId, i) => {
      diffIdOf.set(diffId, { diffId, mediaType: OCI_LAYER_TYPES.none });
      const stored = image.storedLayers?.[i];
      if (stored) diffIdOf.set(stored.digest, { diffId, mediaType: stored.mediaType });
    });
  }
  const uploaded = new Map<Digest, BlobDescriptor>();
  const keep = (digest: Digest) => {
    const known = diffIdOf.get(digest);
    return known !== undefined && wanted.has(known.diffId) && !uploaded.has(known.diffId);
  };
  const saved = base.engine.saveStream(base.images.map((image) => image.id));
  try {
    await readTarStream(saved.stream, async (entry) => {
      const promised = digestFromName(entry.name);
      if (entry.type !== 'file' || !mayBeLayer(entry.name) || (promised && !keep(promised))) {
        entry.body.resume();
        await new Promise((resolve) => entry.body.on('end', resolve));
        return;
      }
      const blob = await client.uploadStream(repository, entry.body, keep);
      if (!blob) return;
      const known = diffIdOf.get(blob.digest)!;
      uploaded.set(known.diffId, { ...blob, mediaType: known.mediaType });
      stats.uploaded += 1;
      stats.bytes += blob.size;
    });
    await saved.done;
  } catch (error) {
    await saved.stop();
    await saved.done.catch(() => undefined);
    throw error;
  }
  return uploaded;
}

/**
 * `ddiff load BUNDLE --to docker://HOST/REPO:TAG`: puts the image into the registry sending only
 * what it lacks. Base layers it holds (in the base's repository) are mounted, the rest come
 * from the local base; the bundle's blobs and config are uploaded unless there; the manifest is
 * put last, so the tag appears only once every blob is in.
 */
interface PushResult {
  reference: string;
  manifestDigest: Digest;
  base: string | null;
  stats: PushStats;
}

export async function loadIntoRegistry(
  bundle: Bundle,
  images: BundleImage[],
  needed: Digest[],
  options: RegistryLoadOptions,
  spoolDir: string,
  engine: () => Engine,
): Promise<PushResult> {
  if (images.length !== 1) throw new UsageError(`${bundle.path} holds ${images.length} images; --to pushes one: choose it with --image`);
  const image = images[0]!;
  const target = parseRegistryReference(options.to);
  if (target.tag === undefined) throw new UsageError(`--to ${options.to}: name a tag, not a digest`);
  const tag: string = target.tag;
  const candidates = baseCandidates(bundle, target, options.base);
  const scopes = [`repository:${target.repository}:pull,push`, ...candidates.map((c) => `repository:${c.repository}:pull`)];
  const client = await connect(target.domain, options, scopes);
  const repository = target.repository;
  const stats = emptyStats();

  const held = await layersInRegistry(client, candidates);
  const blobs = new Map<Digest, BlobDescriptor>();
  for (const diffId of needed) {
    const there = held.get(diffId);
    if (there && (await ensureBlob(client, repository, there.blob, { mountFrom: [there.repository] }, stats)))
      blobs.set(diffId, there.blob);
  }
  const deltaBases = new Set(bundle.metadata.blobs.flatMap((b) => b.delta?.baseLayers ?? []));
  const local = needed.filter((d) => !blobs.has(d) || deltaBases.has(d));
  const localBase = options.base !== undefined && !isRegistryReference(options.base) ? { base: options.base } : {};
  const base = await chooseBase(bundle, local, { ...localBase, preferEngine: false }, spoolDir, engine);
  // Rebuilt into files and checked before a byte is uploaded.
  const rebuilt = await rebuildDeltaLayers(bundle, images, base, spoolDir, { streamed: false });
  try {
    return await pushImage(rebuilt.layers);
  } finally {
    await rebuilt.close();
  }

  async function pushImage(rebuiltLayers: Map<Digest, Layer>): Promise<PushResult> {
    const missing = new Set(local.filter((d) => !blobs.has(d)));
    if (missing.size > 0 && base.kind === 'engine') {
      for (const [diffId, blob] of await uploadFromEngine(client, repository, base, missing, stats)) blobs.set(diffId, blob);
    }
    const layers: BlobDescriptor[] = [];
    for (const entry of image.layers) {
      const layer = rebuiltLayers.get(entry.diffId) ?? (entry.blob ? await bundleLayer(bundle, entry.diffId, entry.blob) : undefined);
      const fromBase = layer ? undefined : blobs.get(entry.diffId);
      if (fromBase) {
        layers.push(fromBase);
        continue;
      }
      const source = layer ?? (base.kind === 'archive' ? base.layers.get(entry.diffId) : undefined);
      if (!source)
        throw new MissingLayersError(`base ${base.kind === 'none' ? '(none)' : base.name} lacks layer ${entry.diffId} the bundle needs`);
      await ensureBlob(client, repository, source, { body: uploadBody(source) }, stats);
      layers.push(describe(source));
    }
    const configBytes = await bundle.catalog.bytes(blobPath(image.id));
    await ensureBlob(client, repository, { digest: sha256(configBytes), size: configBytes.length }, { body: configBytes }, stats);
    const manifest = imageManifest({ digest: image.id, size: configBytes.length }, layers);
    await client.putManifest(repository, tag, manifest.bytes, MediaTypes.ociManifest);
    const baseName = held.size > 0 ? `${target.domain}/${[...new Set([...held.values()].map((h) => h.repository))].join(', ')}` : null;
    return {
      reference: `${target.domain}/${repository}:${tag}`,
      manifestDigest: manifest.digest,
      base: base.kind === 'none' ? baseName : base.name,
      stats,
    };
  }
}
