import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import type { Digest } from '../util/digest.js';
import { ChunkReader } from './chunk-reader.js';
import { CHUNK } from './format.js';
import { type FileContent, scanTar } from './tar-scan.js';

/**
 * What the base offers a delta: every regular file (and hardlink) of every base layer, with
 * where its bytes lie in that layer's uncompressed tar. Files are numbered per layer in tar
 * order, so the same layer (same diffID) gives the same numbers on any host: a delta refers to
 * base files as (layer, ordinal), and the load host needs no content hashes to follow them.
 */
export interface BaseFile {
  layer: number;
  ordinal: number;
  path: string;
  size: number;
  /** Where the content starts in the layer's uncompressed tar. */
  offset: number;
  /** sha256 of the content (32 bytes as a 'binary' string), when the index was built hashing. */
  hash?: string;
  /** sha256 of the first CHUNK bytes, for files larger than CHUNK (finds moved big files). */
  head?: string;
  /**
   * sha256 of every CHUNK-sized piece of a file larger than CHUNK (the first is `head`), when the
   * index was built hashing: a have-list's big files are then copied piece by piece with no bytes.
   */
  pieces?: string[];
}

export interface BaseLayer {
  diffId: Digest;
  /** Length of the uncompressed tar. */
  size: number;
  files: BaseFile[];
}

const MAX_SAME_NAME = 8;

/** sha256 of a file's content and, past CHUNK bytes, of each CHUNK-sized piece. */
async function hashContent(content: FileContent, size: number): Promise<Pick<BaseFile, 'hash' | 'head' | 'pieces'>> {
  const whole = createHash('sha256');
  const pieces: string[] = [];
  let piece = createHash('sha256');
  for (let done = 0; done < size; ) {
    const chunk = await content.next(CHUNK - (done % CHUNK));
    if (chunk.length === 0) throw new Error(`a file's content ends ${size - done} bytes early`);
    whole.update(chunk);
    piece.update(chunk);
    done += chunk.length;
    if (size > CHUNK && (done % CHUNK === 0 || done === size)) {
      pieces.push(piece.digest('binary'));
      piece = createHash('sha256');
    }
  }
  const hash = whole.digest('binary');
  return pieces.length === 0 ? { hash } : { hash, head: pieces[0]!, pieces };
}

export class BaseFileIndex {
  readonly layers: BaseLayer[] = [];
  private readonly byHash = new Map<string, BaseFile>();
  private readonly byHead = new Map<string, BaseFile>();
  private readonly byPath = new Map<string, BaseFile>();
  private readonly byName = new Map<string, BaseFile[]>();
  /** Files by size: the only candidates for identity, hashed on demand. */
  private readonly bySize = new Map<number, BaseFile[]>();
  private readonly sizesHashed = new Set<number>();
  private bigHeadsDone = false;
  private unhashed = 0;

  /**
   * Reads one base layer's uncompressed tar to its end. With `hash` every content is hashed
   * (for a have-list, whose user has no base bytes); without, only headers are parsed: enough
   * to apply deltas, and to make them when the base bytes are at hand, since hashes are then
   * computed only for base files whose size some target file has (measured: hashing every
   * file made base indexing 3-5× slower, and sha256 runs at ~250 MB/s on the 2-core hosts).
   * `diffId` is the caller's word for what the stream is; a delta names its base layers by it.
   */
  async addLayer(diffId: Digest, tar: Readable | AsyncIterable<Uint8Array>, options: { hash: boolean }): Promise<number> {
    // Numbered when complete, so layers read concurrently get distinct numbers.
    const layer = -1;
    const entry: BaseLayer = { diffId, size: 0, files: [] };
    const reader = new ChunkReader(tar);
    const here = new Map<string, BaseFile>();
    for await (const piece of scanTar(reader)) {
      if (piece.kind === 'file') {
        const file: BaseFile = { layer, ordinal: entry.files.length, path: piece.path, size: piece.size, offset: piece.offset };
        if (options.hash) Object.assign(file, await hashContent(piece.content, piece.size));
        entry.files.push(file);
        here.set(file.path, file);
      } else if (piece.kind === 'link') {
        const target = here.get(piece.target);
        if (target) {
          const alias: BaseFile = { ...target, ordinal: entry.files.length, path: piece.path };
          entry.files.push(alias);
          here.set(alias.path, alias);
        }
      }
    }
    entry.size = reader.position;
    const number = this.layers.push(entry) - 1;
    for (const file of entry.files) {
      file.layer = number;
      this.remember(file);
    }
    return number;
  }

  /** Adds a layer known only by its file list (a have-list); see serialize.ts. */
  addKnownLayer(layer: Omit<BaseLayer, 'files'> & { files: Omit<BaseFile, 'layer' | 'ordinal'>[] }): number {
    const number = this.layers.length;
    const files = layer.files.map((file, ordinal): BaseFile => ({ ...file, layer: number, ordinal }));
    this.layers.push({ diffId: layer.diffId, size: layer.size, files });
    for (const file of files) this.remember(file);
    return number;
  }

  private remember(file: BaseFile): void {
    if (file.hash === undefined) this.unhashed++;
    if (file.hash !== undefined && !this.byHash.has(file.hash)) this.byHash.set(file.hash, file);
    if (file.head !== undefined && !this.byHead.has(file.head)) this.byHead.set(file.head, file);
    const sized = this.bySize.get(file.size);
    if (sized === undefined) this.bySize.set(file.size, [file]);
    else sized.push(file);
    if (file.path === '') return; // a have-list's files have no paths
    // Upper layers shadow lower ones, as in the image's filesystem.
    this.byPath.set(file.path, file);
    const name = posix.basename(file.path);
    const same = this.byName.get(name);
    if (same === undefined) this.byName.set(name, [file]);
    else if (same.length < MAX_SAME_NAME) same.push(file);
  }

  /** Whether every layer was indexed with content hashes (exact references need them). */
  get hashed(): boolean {
    return this.unhashed === 0;
  }

  file(layer: number, ordinal: number): BaseFile | undefined {
    return this.layers[layer]?.files[ordinal];
  }

  layerOf(diffId: Digest): number | undefined {
    const found = this.layers.findIndex((layer) => layer.diffId === diffId);
    return found === -1 ? undefined : found;
  }

  /** The file at `path` in the base's filesystem (upper layers shadow lower ones). */
  samePath(path: string): BaseFile | undefined {
    return this.byPath.get(path);
  }

  /** Whether some base file has exactly `size` bytes (else no file of that size can be identical). */
  hasSize(size: number): boolean {
    return this.bySize.has(size);
  }

  /**
   * A base file whose content hashes to `hash`. Files of that size not yet hashed are hashed
   * by `hashOf` (each at most once); without it, only hashes the index has count.
   */
  async identical(hash: string, size: number, hashOf?: (file: BaseFile) => Promise<string>): Promise<BaseFile | undefined> {
    if (hashOf !== undefined && !this.sizesHashed.has(size)) {
      this.sizesHashed.add(size);
      for (const file of this.bySize.get(size) ?? []) {
        if (file.hash !== undefined) continue;
        file.hash = await hashOf(file);
        this.unhashed--;
        if (!this.byHash.has(file.hash)) this.byHash.set(file.hash, file);
      }
    }
    const file = this.byHash.get(hash);
    return file?.size === size ? file : undefined;
  }

  /** A big base file whose first CHUNK bytes hash to `head`; `headOf` hashes a file's first CHUNK bytes. */
  async sameHead(head: string, headOf?: (file: BaseFile) => Promise<string>): Promise<BaseFile | undefined> {
    if (headOf !== undefined && !this.bigHeadsDone) {
      this.bigHeadsDone = true;
      for (const [size, files] of this.bySize) {
        if (size <= CHUNK) continue;
        for (const file of files) {
          if (file.head !== undefined) continue;
          file.head = await headOf(file);
          if (!this.byHead.has(file.head)) this.byHead.set(file.head, file);
        }
      }
    }
    return this.byHead.get(head);
  }

  /** The base file most likely to share content with a target file: same path, else same name. */
  similar(path: string, size: number): BaseFile | undefined {
    const same = this.byPath.get(path);
    if (same !== undefined && same.size > 0) return same;
    let best: BaseFile | undefined;
    for (const file of this.byName.get(posix.basename(path)) ?? []) {
      if (file.size > 0 && (best === undefined || Math.abs(file.size - size) < Math.abs(best.size - size))) best = file;
    }
    return best;
  }
}
