import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { readAt } from '../util/read-at.js';
import { detectCompression, type Compression } from '../util/compression.js';
import { Catalog, type CatalogEntry } from './catalog.js';
import { measure, measureFileRange, type EntryFacts } from './measure.js';

/** Where an entry's stored bytes are: a byte range of a file on disk. */
export interface FileRange {
  path: string;
  offset: number;
}

/**
 * A catalog whose entries are byte ranges of files (a tar file, or files in a directory): read
 * on demand, any number of times. Facts are computed once per entry.
 */
export abstract class FileRangeCatalog extends Catalog {
  readonly seekable = true;
  private readonly factsCache = new Map<string, Promise<EntryFacts>>();

  protected abstract rangeOf(entry: CatalogEntry): FileRange;

  private readRange(entry: CatalogEntry, length: number): Promise<Buffer> {
    const { path, offset } = this.rangeOf(entry);
    return readAt(path, length, offset);
  }

  protected async readBytes(entry: CatalogEntry): Promise<Buffer> {
    const bytes = await this.readRange(entry, entry.size);
    if (bytes.length !== entry.size) throw this.fail(`'${entry.name}' is truncated`);
    return bytes;
  }

  protected async detectCompression(entry: CatalogEntry): Promise<Compression> {
    return detectCompression(await this.readRange(entry, Math.min(6, entry.size)));
  }

  override location(name: string): FileRange | undefined {
    return this.rangeOf(this.require(name));
  }

  protected openEntry(entry: CatalogEntry): Readable {
    if (entry.size === 0) return Readable.from([]);
    const { path, offset } = this.rangeOf(entry);
    // 256 KiB reads: 1 MiB ones live past V8's young generation and piled up dead (~40 MB of
    // peak RSS while a 121 MB layer was copied); smaller ones cost more calls for no gain.
    return createReadStream(path, { start: offset, end: offset + entry.size - 1, highWaterMark: 256 << 10 });
  }

  protected factsOf(entry: CatalogEntry, wantDiffId: boolean): Promise<EntryFacts> {
    const key = `${entry.name}\0${wantDiffId}`;
    // Facts with the diffID answer a request without it too: a layer is read once.
    let facts = this.factsCache.get(`${entry.name}\0true`) ?? this.factsCache.get(key);
    if (!facts) {
      const { path, offset } = this.rangeOf(entry);
      facts = (async () =>
        (await measureFileRange(path, offset, entry.size, wantDiffId)) ??
        (await measure(this.openEntry(entry), { wantDiffId, keepJsonUpTo: 0, source: this.source })).facts)();
      this.factsCache.set(key, facts);
    }
    return facts;
  }
}
