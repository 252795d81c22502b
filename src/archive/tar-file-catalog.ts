import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { indexTarFile } from '../tar/file-index.js';
import { Catalog, type CatalogEntry } from './catalog.js';
import { detectCompression, type Compression } from '../util/compression.js';
import { measure, measureFileRange, type EntryFacts } from './measure.js';

interface Located extends CatalogEntry {
  offset: number;
}

/** An uncompressed tar file on disk: headers indexed by seeking, entries read on demand. */
export class TarFileCatalog extends Catalog {
  readonly seekable = true;
  readonly path: string;
  private readonly factsCache = new Map<string, Promise<EntryFacts>>();

  private constructor(path: string, source: string) {
    super(source);
    this.path = path;
  }

  /** `source` names the archive in messages when `path` is a spooled copy of it. */
  static async open(path: string, source: string = path): Promise<TarFileCatalog> {
    const catalog = new TarFileCatalog(path, source);
    let entries;
    try {
      entries = await indexTarFile(path);
    } catch (error) {
      throw catalog.fail((error as Error).message, error);
    }
    for (const entry of entries) catalog.add(entry);
    return catalog;
  }

  protected async readBytes(entry: CatalogEntry): Promise<Buffer> {
    const handle = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(entry.size);
      const { bytesRead } = await handle.read(buf, 0, entry.size, (entry as Located).offset);
      if (bytesRead !== entry.size) throw this.fail(`'${entry.name}' is truncated`);
      return buf;
    } finally {
      await handle.close();
    }
  }

  protected async detectCompression(entry: CatalogEntry): Promise<Compression> {
    const handle = await open(this.path, 'r');
    try {
      const head = Buffer.alloc(Math.min(6, entry.size));
      await handle.read(head, 0, head.length, (entry as Located).offset);
      return detectCompression(head);
    } finally {
      await handle.close();
    }
  }

  protected openEntry(entry: CatalogEntry): Readable {
    if (entry.size === 0) return Readable.from([]);
    const start = (entry as Located).offset;
    return createReadStream(this.path, { start, end: start + entry.size - 1, highWaterMark: 1 << 20 });
  }

  protected factsOf(entry: CatalogEntry, wantDiffId: boolean): Promise<EntryFacts> {
    const key = `${entry.name}\0${wantDiffId}`;
    let facts = this.factsCache.get(key);
    if (!facts) {
      facts = (async () =>
        (await measureFileRange(this.path, (entry as Located).offset, entry.size, wantDiffId)) ??
        (await measure(this.openEntry(entry), { wantDiffId, keepJsonUpTo: 0, source: this.source })).facts)();
      this.factsCache.set(key, facts);
    }
    return facts;
  }
}
