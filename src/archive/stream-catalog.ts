import type { Readable } from 'node:stream';
import { DdiffError, errorMessage, TarFormatError, TarTruncatedError } from '../errors.js';
import { readTarStream } from '../tar/extract.js';
import { isContentAddressed } from '../image/blob-names.js';
import { Catalog, MAX_JSON_BYTES, type CatalogEntry } from './catalog.js';
import type { Compression } from '../util/compression.js';
import { measure, type EntryFacts } from './measure.js';

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
    try {
      await readTarStream(input, async (entry) => {
        catalog.add({ name: entry.name, type: entry.type, size: entry.size, linkname: entry.linkname });
        if (entry.type !== 'file') return;
        const wantDiffId = !isContentAddressed(entry.name);
        const { facts, kept } = await measure(entry.body, { wantDiffId, keepJsonUpTo: MAX_JSON_BYTES, source });
        const name = catalog.resolveName(entry.name);
        catalog.measured.set(name, facts);
        if (kept) catalog.kept.set(name, kept);
        else catalog.kept.delete(name);
      });
    } catch (error) {
      if (error instanceof DdiffError) throw error;
      if (error instanceof TarTruncatedError || error instanceof TarFormatError) throw catalog.fail(error.message, error);
      throw catalog.fail(errorMessage(error), error);
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
