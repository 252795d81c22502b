import { UnsafePathError } from '../errors.js';
import type { Readable } from 'node:stream';
import { ArchiveError } from '../errors.js';
import { normalizeEntryName, symlinkTarget } from '../tar/names.js';
import type { EntryType } from '../tar/header.js';
import type { EntryFacts } from './measure.js';
import type { Compression } from '../util/compression.js';
import type { FileLocation } from '../image/layer.js';

/** JSON entries (manifests, configs, indexes) larger than this are refused: 8 MiB. */
export const MAX_JSON_BYTES = 8 << 20;

export interface CatalogEntry {
  name: string;
  type: EntryType;
  size: number;
  linkname: string;
}

/**
 * The entries of one image archive, whatever holds them (a tar file, a directory, a stream
 * already scanned), with links resolved. Format parsers see only this.
 */
export abstract class Catalog {
  readonly source: string;
  private readonly entries = new Map<string, CatalogEntry>();

  protected constructor(source: string) {
    this.source = source;
  }

  /** Adds an entry; a later entry of the same name replaces an earlier one, as tar does. */
  protected add(entry: CatalogEntry): void {
    let name: string;
    try {
      name = normalizeEntryName(entry.name);
    } catch (error) {
      throw this.fail(error instanceof Error ? error.message : String(error));
    }
    if (name === '') return;
    const earlier = this.entries.get(name);
    if (earlier && (earlier.type !== 'directory' || entry.type !== 'directory')) {
      // Tar lets a later entry replace an earlier one; image tools never write that, and it is how
      // a tampered archive would hide a second version of a blob. Refused.
      throw this.fail(`entry '${name}' appears more than once`);
    }
    this.entries.set(name, { ...entry, name });
  }

  fail(problem: string, cause?: unknown): ArchiveError {
    return new ArchiveError(this.source, problem, cause === undefined ? {} : { cause });
  }

  /** All entry names, as stored (before link resolution). */
  names(): string[] {
    return [...this.entries.keys()];
  }

  /** The regular file that `name` is or links to, or undefined when there is none. */
  resolve(name: string): CatalogEntry | undefined {
    let current: string;
    try {
      current = normalizeEntryName(name); // a name from a manifest: '/', '../x' are as hostile as entries
    } catch (error) {
      if (error instanceof UnsafePathError) throw this.fail(`the manifest names '${name}', which is not inside the archive`);
      throw error;
    }
    for (let hops = 0; hops < 32; hops++) {
      const entry = this.entries.get(current);
      if (!entry) return undefined;
      if (entry.type === 'file') return entry;
      try {
        if (entry.type === 'symlink') current = symlinkTarget(entry.name, entry.linkname);
        else if (entry.type === 'link') current = normalizeEntryName(entry.linkname);
        else return undefined;
      } catch (error) {
        if (error instanceof UnsafePathError) throw this.fail(error.message);
        throw error;
      }
    }
    throw this.fail(`links starting at '${name}' form a loop`);
  }

  has(name: string): boolean {
    return this.resolve(name) !== undefined;
  }

  protected require(name: string): CatalogEntry {
    const entry = this.resolve(name);
    if (!entry) throw this.fail(`'${name}' is missing from the archive`);
    return entry;
  }

  async readJson(name: string): Promise<unknown> {
    const bytes = await this.bytes(name);
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      throw this.fail(`'${name}' is not valid JSON (${(error as Error).message})`);
    }
  }

  /** The bytes of a small entry (JSON: manifests, configs, indexes). */
  async bytes(name: string): Promise<Buffer> {
    const entry = this.require(name);
    if (entry.size > MAX_JSON_BYTES) {
      throw this.fail(`'${name}' is ${entry.size} bytes, over the ${MAX_JSON_BYTES}-byte limit for JSON`);
    }
    return this.readBytes(entry);
  }

  /** Digest, size and compression of an entry (and its diffID when asked). */
  facts(name: string, wantDiffId: boolean): Promise<EntryFacts> {
    return this.factsOf(this.require(name), wantDiffId);
  }

  /** True when `open` can stream entries (files and directories; not a stream already read). */
  abstract readonly seekable: boolean;
  /** Streams the stored bytes of an entry. */
  open(name: string): Readable {
    return this.openEntry(this.require(name));
  }
  entry(name: string): CatalogEntry {
    return this.require(name);
  }

  /** Where the entry's bytes lie in a regular file, for catalogs whose entries do. */
  location(_name: string): FileLocation | undefined {
    return undefined;
  }

  /** Compression of an entry, from its first bytes. */
  compressionOf(name: string): Promise<Compression> {
    return this.detectCompression(this.require(name));
  }

  protected abstract detectCompression(entry: CatalogEntry): Promise<Compression>;
  protected abstract readBytes(entry: CatalogEntry): Promise<Buffer>;
  protected abstract factsOf(entry: CatalogEntry, wantDiffId: boolean): Promise<EntryFacts>;
  protected abstract openEntry(entry: CatalogEntry): Readable;
}
