import { indexTarFile } from '../tar/file-index.js';
import type { CatalogEntry } from './catalog.js';
import { FileRangeCatalog, type FileRange } from './file-range-catalog.js';

interface Located extends CatalogEntry {
  offset: number;
}

/** An uncompressed tar file on disk: headers indexed by seeking, entries read on demand. */
export class TarFileCatalog extends FileRangeCatalog {
  readonly path: string;

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

  protected rangeOf(entry: CatalogEntry): FileRange {
    return { path: this.path, offset: (entry as Located).offset };
  }
}
