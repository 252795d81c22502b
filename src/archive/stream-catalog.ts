import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import { DdiffError } from '../errors.js';
import { isContentAddressed } from './formats/build-image.js';
import { Catalog, MAX_JSON_BYTES, type CatalogEntry } from './catalog.js';
import type { Compression } from '../util/compression.js';
import { measure, type EntryFacts } from './measure.js';
import type { EntryType } from '../tar/header.js';

function entryType(type: tar.Header['type']): EntryType {
  switch (type) {
    case 'file':
    case 'contiguous-file':
      return 'file';
    case 'directory':
      return 'directory';
    case 'symlink':
      return 'symlink';
    case 'link':
      return 'link';
    default:
      return 'other';
  }
}

/**
 * An archive read once from a stream (a pipe, stdin, or a compressed file). Every entry is
 * hashed as it passes; only small JSON entries are kept in memory. Layer bytes cannot be read
 * again afterwards (`seekable` is false).
 */
export class StreamCatalog extends Catalog {
  readonly seekable = false;
  private readonly kept = new Map<string, Buffer>();
  private readonly measured = new Map<string, EntryFacts>();

  private constructor(source: string) {
    super(source);
  }

  static async scan(input: Readable, source: string): Promise<StreamCatalog> {
    const catalog = new StreamCatalog(source);
    const extract = tar.extract();
    const consume = (async () => {
      for await (const entry of extract) {
        const { header } = entry;
        // tar-stream reads a base-256 size it cannot decode as null, and then waits forever for
        // the entry's end: refuse it here, as the seek-based index does.
        if (!Number.isSafeInteger(header.size) || header.size! < 0) throw catalog.fail(`entry '${header.name}' has a bad size`);
        const type = entryType(header.type);
        const record: CatalogEntry = { name: header.name, type, size: header.size ?? 0, linkname: header.linkname ?? '' };
        catalog.add(record);
        if (type !== 'file') {
          entry.resume();
          continue;
        }
        const wantDiffId = !isContentAddressed(header.name);
        const { facts, kept } = await measure(entry, { wantDiffId, keepJsonUpTo: MAX_JSON_BYTES, source });
        const name = catalog.resolveName(header.name);
        catalog.measured.set(name, facts);
        if (kept) catalog.kept.set(name, kept);
        else catalog.kept.delete(name);
      }
    })();
    try {
      await Promise.all([pipeline(input, extract), consume]);
    } catch (error) {
      const message = (error as Error).message ?? String(error);
      if (/unexpected end/i.test(message)) throw catalog.fail('archive is truncated (unexpected end of data)', error);
      if (/invalid tar header/i.test(message)) throw catalog.fail('not a valid tar archive (bad header)', error);
      if (error instanceof DdiffError) throw error;
      throw catalog.fail(message, error);
    }
    return catalog;
  }

  private resolveName(name: string): string {
    return this.entry(name).name;
  }

  protected async readBytes(entry: CatalogEntry): Promise<Buffer> {
    const bytes = this.kept.get(entry.name);
    if (!bytes) throw this.fail(`'${entry.name}' is not JSON`);
    return bytes;
  }

  protected async factsOf(entry: CatalogEntry): Promise<EntryFacts> {
    const facts = this.measured.get(entry.name);
    if (!facts) throw this.fail(`'${entry.name}' was not read`);
    return facts;
  }

  protected async detectCompression(entry: CatalogEntry): Promise<Compression> {
    return (await this.factsOf(entry)).compression;
  }

  protected openEntry(entry: CatalogEntry): Readable {
    throw this.fail(`'${entry.name}' cannot be read again from a stream`);
  }
}
