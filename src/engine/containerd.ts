import { PassThrough, type Writable } from 'node:stream';
import { ConfigError, EngineError } from '../errors.js';
import { parseConfig } from '../image/config.js';
import { INDEX_TYPES } from '../image/media-types.js';
import { hostPlatform } from '../image/platform.js';
import { normalizedName } from '../image/reference.js';
import { isDigest, type Digest } from '../util/digest.js';
import { isRecord } from '../util/json.js';
import type { BlobDescriptor } from '../image/layer.js';
import { Engine, type EngineImage } from './engine.js';

/** One row of `ctr images ls`: a name and the manifest (or index) it points at. */
interface ImageRecord {
  name: string;
  digest: Digest;
  mediaType: string;
}

type ResolvedImage = EngineImage & { names: string[] };

/** `ctr images ls` columns: REF TYPE DIGEST SIZE PLATFORMS LABELS (REF and TYPE hold no spaces). */
function parseImageList(text: string): ImageRecord[] {
  return text
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((cols): cols is [string, string, Digest, ...string[]] => cols.length >= 3 && isDigest(cols[2]))
    .map(([name, mediaType, digest]) => ({ name, mediaType, digest }));
}

function descriptorOf(value: unknown, where: string): BlobDescriptor {
  if (!isRecord(value) || !isDigest(value.digest) || typeof value.size !== 'number') {
    throw new EngineError(`containerd: ${where} is not a valid descriptor`);
  }
  return { digest: value.digest, size: value.size, mediaType: typeof value.mediaType === 'string' ? value.mediaType : '' };
}

/**
 * containerd through `ctr` (namespace chosen once; socket from CONTAINERD_ADDRESS, which ctr
 * reads itself). Its images are names pointing at manifests in a content store: the image ID is
 * the manifest's config digest, read with `ctr content get`, like the diffIDs in that config.
 */
export class Containerd extends Engine {
  private records: Promise<ImageRecord[]> | undefined;
  private readonly resolved = new Map<Digest, Promise<ResolvedImage>>();

  constructor(readonly namespace: string) {
    super('containerd');
  }

  protected override commandLine(args: string[]): [string, string[]] {
    return ['ctr', ['--namespace', this.namespace, ...args]];
  }

  private imageRecords(): Promise<ImageRecord[]> {
    this.records ??= this.run(['images', 'ls']).then(parseImageList);
    return this.records;
  }

  private async blobJson(digest: Digest): Promise<unknown> {
    const text = await this.run(['content', 'get', digest]);
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new EngineError(`containerd: blob ${digest} is not JSON`);
    }
  }

  /** The image a record's manifest (or, for an index, its host-platform manifest) describes. */
  private resolve(record: ImageRecord): Promise<ResolvedImage> {
    let found = this.resolved.get(record.digest);
    if (!found) {
      found = this.resolveManifest(record.digest, INDEX_TYPES.has(record.mediaType));
      this.resolved.set(record.digest, found);
    }
    return found;
  }

  private async resolveManifest(digest: Digest, isIndex: boolean): Promise<ResolvedImage> {
    let manifest = await this.blobJson(digest);
    if (isIndex) {
      const host = hostPlatform();
      const entries = isRecord(manifest) && Array.isArray(manifest.manifests) ? manifest.manifests.filter(isRecord) : [];
      const entry = entries.find((m) => isRecord(m.platform) && m.platform.os === host.os && m.platform.architecture === host.architecture);
      if (!entry || !isDigest(entry.digest))
        throw new EngineError(`containerd: index ${digest} has no ${host.os}/${host.architecture} image`);
      manifest = await this.blobJson(entry.digest);
    }
    if (!isRecord(manifest) || !Array.isArray(manifest.layers)) throw new EngineError(`containerd: manifest ${digest} has no layers`);
    const config = descriptorOf(manifest.config, `manifest ${digest} config`);
    let parsed: ReturnType<typeof parseConfig>;
    try {
      parsed = parseConfig(await this.blobJson(config.digest));
    } catch (error) {
      if (error instanceof ConfigError) throw new EngineError(`containerd: config ${config.digest}: ${error.message}`);
      throw error;
    }
    const storedLayers = manifest.layers.map((l, i) => descriptorOf(l, `manifest ${digest} layer ${i}`));
    return { id: config.digest, tags: [], names: [], platform: parsed.platform, diffIds: parsed.diffIds, storedLayers };
  }

  /** Every image, one entry per image ID, with all the names that point at it. */
  private async allImages(): Promise<ResolvedImage[]> {
    const records = await this.imageRecords();
    const images = await Promise.all(records.map((r) => this.resolve(r).catch(() => undefined)));
    const byId = new Map<Digest, ResolvedImage>();
    records.forEach((record, i) => {
      const image = images[i];
      if (!image) return;
      const entry = byId.get(image.id) ?? { ...image, tags: [], names: [] };
      entry.names.push(record.name);
      if (!record.name.includes('@')) entry.tags.push(record.name);
      byId.set(image.id, entry);
    });
    return [...byId.values()];
  }

  /** The image a reference names: by full or short ID, by its name as stored, or by its normalized name. */
  private async find(ref: string): Promise<ResolvedImage | undefined> {
    const images = await this.allImages();
    const hex = ref.replace(/^sha256:/, '');
    if (/^[0-9a-f]{12,64}$/.test(hex)) {
      const hit = images.find((i) => i.id.slice(7).startsWith(hex));
      if (hit) return hit;
    }
    let normalized: string | undefined;
    try {
      normalized = normalizedName(ref);
    } catch {
      normalized = undefined;
    }
    return images.find((i) => i.names.includes(ref)) ?? images.find((i) => normalized !== undefined && i.names.includes(normalized));
  }

  override async inspectAll(refs: string[]): Promise<EngineImage[]> {
    const found = await Promise.all(refs.map((ref) => this.find(ref)));
    const missing = refs.filter((_, i) => !found[i]);
    if (missing.length > 0) throw new EngineError(`containerd (namespace ${this.namespace}): no such image: ${missing.join(', ')}`);
    return found as ResolvedImage[];
  }

  override async localImages(): Promise<EngineImage[]> {
    return this.allImages();
  }

  override async imageIds(): Promise<string[]> {
    return (await this.allImages()).map((i) => i.id);
  }

  /** Names to hand to `ctr images export` for references that may be image IDs. */
  private async namesFor(refs: string[]): Promise<string[]> {
    const images = await this.inspectAll(refs);
    return images.map((image) => (image as ResolvedImage).names[0]!);
  }

  override async save(refs: string[], file: string): Promise<void> {
    await this.run(['images', 'export', file, ...(await this.namesFor(refs))]);
  }

  override saveStream(refs: string[]) {
    return this.exportStream(this.namesFor(refs));
  }

  /** `ctr images export -` once the names are known; the stream is there at once, as `save`'s is. */
  private exportStream(names: Promise<string[]>) {
    const out = new PassThrough();
    let stopExport: () => Promise<void> = async () => undefined;
    const done = names.then(async (list) => {
      const { child, exit } = this.start(['images', 'export', '-', ...list], { stdin: false });
      stopExport = () => child.stop();
      child.stdout.pipe(out);
      await exit;
    });
    done.catch((error: unknown) => out.destroy(error as Error));
    return { stream: out, done, stop: () => stopExport() };
  }

  override startLoad(): { input: Writable; done: Promise<string>; stop: () => Promise<void> } {
    this.records = undefined;
    this.resolved.clear();
    const { child, exit } = this.start(['images', 'import', '-'], { stdin: true, ownInterrupt: true });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (t: string) => (out += t));
    const done = exit.then(() => out);
    done.catch(() => undefined);
    if (!child.stdin) throw new EngineError('ctr images import: no input stream');
    return { input: child.stdin, done, stop: () => child.stop() };
  }

  /** Blobs in the content store: the layers an import may leave out of its archive. */
  async contentDigests(): Promise<Set<string>> {
    const out = await this.run(['content', 'ls', '-q']);
    return new Set(out.split('\n').map((l) => l.trim()));
  }

  override async removeImages(ids: string[]): Promise<void> {
    this.records = undefined;
    const images = await this.allImages();
    const names = images.filter((i) => ids.includes(i.id)).flatMap((i) => i.names);
    if (names.length > 0) await this.run(['images', 'rm', ...names]).catch(() => undefined);
    this.records = undefined;
  }

  override async retag(id: Digest, ref: string): Promise<void> {
    this.records = undefined;
    const image = (await this.allImages()).find((i) => i.id === id && i.names.some((n) => n !== ref));
    const source = image?.names.find((n) => n !== ref);
    if (source) await this.run(['images', 'tag', '--force', source, normalizedName(ref)]).catch(() => undefined);
    this.records = undefined;
  }
}
