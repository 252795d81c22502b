import { pipeline } from 'node:stream/promises';
import type { Readable, Transform, Writable } from 'node:stream';
import tar from 'tar-stream';

const EPOCH = new Date(0);

/**
 * Writes a tar stream entry by entry into `output`, one entry's data streaming at a time.
 * Entries get fixed metadata (root, mode 0644, mtime 0) so equal inputs give equal archives.
 */
export class TarWriter {
  private readonly pack = tar.pack();
  private readonly done: Promise<void>;

  constructor(output: Writable) {
    this.done = pipeline(this.pack as unknown as Readable, output);
    this.done.catch(() => undefined); // surfaced by finish()
  }

  private header(name: string, size: number): tar.Header {
    return {
      name,
      size,
      mode: 0o644,
      mtime: EPOCH,
      type: 'file',
      linkname: '',
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
      devmajor: 0,
      devminor: 0,
    };
  }

  addBuffer(name: string, data: Buffer | string): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    return new Promise((resolve, reject) => {
      this.pack.entry(this.header(name, buf.length), buf, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Streams `size` bytes from `data` (through `through`, in order) into an entry; fails if the stream's length differs. */
  async addStream(name: string, size: number, data: Readable, ...through: Transform[]): Promise<void> {
    const sink = this.pack.entry(this.header(name, size)) as unknown as Writable;
    const flow = pipeline([data, ...through, sink] as unknown as [Readable, Writable]);
    await Promise.race([flow, this.done]);
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    await this.done;
  }

  destroy(error?: Error): void {
    this.pack.destroy(error);
  }
}
