import { createReadStream } from 'node:fs';
import { open, readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import fg from 'fast-glob';
import { Catalog, type CatalogEntry } from './catalog.js';
import { detectCompression, type Compression } from '../util/compression.js';
import { measure, measureFileRange, type EntryFacts } from './measure.js';

/** An image layout unpacked in a directory (OCI layout, `dir:`/docker-dir, unpacked docker-archive). */
export class DirectoryCatalog extends Catalog {
  readonly seekable = true;
  readonly root: string;

  private constructor(root: string) {
    super(root);
    this.root = root;
  }

  static async open(dir: string): Promise<DirectoryCatalog> {
    const root = await realpath(dir);
    const catalog = new DirectoryCatalog(dir);
    // Not onlyFiles: that drops symlinks (fast-glob does not follow them here), and a layout's links
    // must be resolved — inside the directory — or refused, never skipped as if absent.
    const names = await fg('**', { cwd: root, dot: true, onlyFiles: false, followSymbolicLinks: false });
    for (const name of names) {
      const full = join(root, name);
      const target = await realpath(full).catch(() => undefined);
      if (target === undefined) continue; // dangling symlink: as if absent
      const rel = relative(root, target);
      if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) throw catalog.fail(`'${name}' links outside the directory`);
      const info = await stat(target);
      if (!info.isFile()) continue;
      catalog.add({ name, type: 'file', size: info.size, linkname: '' });
    }
    return catalog;
  }

  private pathOf(entry: CatalogEntry): string {
    return join(this.root, entry.name);
  }

  protected readBytes(entry: CatalogEntry): Promise<Buffer> {
    return readFile(this.pathOf(entry));
  }

  protected async detectCompression(entry: CatalogEntry): Promise<Compression> {
    const handle = await open(this.pathOf(entry), 'r');
    try {
      const head = Buffer.alloc(6);
      const { bytesRead } = await handle.read(head, 0, 6, 0);
      return detectCompression(head.subarray(0, bytesRead));
    } finally {
      await handle.close();
    }
  }

  protected openEntry(entry: CatalogEntry): Readable {
    return createReadStream(this.pathOf(entry), { highWaterMark: 1 << 20 });
  }

  protected async factsOf(entry: CatalogEntry, wantDiffId: boolean): Promise<EntryFacts> {
    const facts = await measureFileRange(this.pathOf(entry), 0, entry.size, wantDiffId);
    return facts ?? (await measure(this.openEntry(entry), { wantDiffId, keepJsonUpTo: 0, source: this.source })).facts;
  }
}
