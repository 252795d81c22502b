import { normalizeEntryName } from '../tar/names.js';
import { type Compression, detectCompression } from '../util/compression.js';
import type { CatalogEntry } from './catalog.js';
import { FileRangeCatalog, type FileRange } from './file-range-catalog.js';

/**
 * An archive read once from a stream whose entries were kept in a spool file, back to back,
 * except those passed over (layers a diff's base already has): their names, sizes and
 * compression are known, their bytes are not, and reading them is an error.
 */
export class SpoolCatalog extends FileRangeCatalog {
  private readonly offsets = new Map<string, number>();
  private readonly passedOver = new Map<string, () => Buffer>();

  constructor(
    source: string,
    readonly path: string,
  ) {
    super(source);
  }

  /** An entry whose bytes lie in the spool file from `offset`. */
  keep(entry: CatalogEntry, offset: number): void {
    this.add(entry);
    if (entry.type === 'file') this.offsets.set(normalizeEntryName(entry.name), offset);
  }

  /** An entry whose bytes were not kept but their first few (`head`, once they have passed). */
  passOver(entry: CatalogEntry, head: () => Buffer): void {
    this.add(entry);
    this.passedOver.set(normalizeEntryName(entry.name), head);
  }

  protected rangeOf(entry: CatalogEntry): FileRange {
    const offset = this.offsets.get(entry.name);
    if (offset === undefined) throw this.fail(`'${entry.name}' was passed over (the base has it), its bytes were not kept`);
    return { path: this.path, offset };
  }

  override location(name: string): FileRange | undefined {
    const entry = this.entry(name);
    return this.offsets.has(entry.name) ? this.rangeOf(entry) : undefined;
  }

  protected override detectCompression(entry: CatalogEntry): Promise<Compression> {
    const head = this.passedOver.get(entry.name);
    return head === undefined ? super.detectCompression(entry) : Promise.resolve(detectCompression(head()));
  }
}
