import { Worker } from 'node:worker_threads';
import type { Digest } from './digest.js';

/**
 * sha256 is the main CPU cost of checking layers (~0.6 s per 100 MB on these machines' cores):
 * on the main thread it adds to every pass that also decodes, compresses or copies. Here it runs
 * on one worker thread, beside that work, on a machine with a second core. One worker serves
 * every hash at once (a second isolate would cost ~10 MB of memory for no more cores here); file
 * ranges are hashed a slice at a time so that streams sharing the worker never wait long.
 *
 * The worker's code is inline, so it needs no file of its own beside the module (a bundled
 * single executable has none).
 */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads');
const { openSync, readSync, closeSync } = require('node:fs');
const { createHash } = require('node:crypto');
const jobs = new Map();
const done = (id, job) => {
  jobs.delete(id);
  parentPort.postMessage({ id, digest: 'sha256:' + job.hash.digest('hex'), size: job.size });
};
function fileSlice(id, job) {
  try {
    const n = job.size < job.length ? readSync(job.fd, job.buffer, 0, Math.min(job.buffer.length, job.length - job.size), job.offset + job.size) : 0;
    if (n > 0) {
      job.hash.update(job.buffer.subarray(0, n));
      job.size += n;
      return setImmediate(fileSlice, id, job);
    }
    closeSync(job.fd);
    done(id, job);
  } catch (error) {
    jobs.delete(id);
    parentPort.postMessage({ id, error: String(error && error.message || error) });
  }
}
parentPort.on('message', (m) => {
  if (m.file) {
    let fd;
    try {
      fd = openSync(m.file.path, 'r');
    } catch (error) {
      return parentPort.postMessage({ id: m.id, error: String(error && error.message || error) });
    }
    const job = { hash: createHash('sha256'), size: 0, fd, offset: m.file.offset, length: m.file.length, buffer: Buffer.allocUnsafe(1 << 20) };
    jobs.set(m.id, job);
    return fileSlice(m.id, job);
  }
  if (m.shared) return jobs.set(m.id, { hash: createHash('sha256'), size: 0, shared: m.shared });
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.drop) return jobs.delete(m.id);
  if (m.end) return done(m.id, job);
  job.hash.update(new Uint8Array(job.shared, m.slot * m.slotSize, m.length));
  job.size += m.length;
  parentPort.postMessage({ id: m.id, slot: m.slot });
});
`;

interface RangeDigest {
  digest: Digest;
  /** Bytes hashed: for a file range, less than asked for when the file ends early. */
  size: number;
}

interface Reply {
  id: number;
  digest?: Digest;
  size?: number;
  slot?: number;
  error?: string;
}

interface Job {
  resolve: (digest: RangeDigest) => void;
  reject: (error: Error) => void;
  freed?: (slot: number) => void;
}

/** The one hashing worker: started on first use, unreferenced while it has no job. */
class HashWorker {
  private worker: Worker | undefined;
  private readonly jobs = new Map<number, Job>();
  private nextId = 1;

  private get thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_CODE, { eval: true });
    worker.on('message', (reply: Reply) => this.answer(reply));
    const fail = (error: Error) => {
      this.worker = undefined;
      for (const job of this.jobs.values()) job.reject(error);
      this.jobs.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`sha256 worker stopped (exit code ${code})`)));
    this.worker = worker;
    return worker;
  }

  private answer(reply: Reply): void {
    const job = this.jobs.get(reply.id);
    if (!job) return;
    if (reply.slot !== undefined) return job.freed?.(reply.slot);
    this.end(reply.id);
    if (reply.error !== undefined) job.reject(new Error(reply.error));
    else job.resolve({ digest: reply.digest!, size: reply.size ?? 0 });
  }

  /** Starts a job; the worker keeps the process alive only while some job is open. */
  start(first: Record<string, unknown>, freed?: (slot: number) => void): { id: number; result: Promise<RangeDigest> } {
    const id = this.nextId++;
    const result = new Promise<RangeDigest>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, ...(freed ? { freed } : {}) });
    });
    result.catch(() => undefined);
    const thread = this.thread;
    thread.ref();
    thread.postMessage({ id, ...first });
    return { id, result };
  }

  /** Boots the thread now; it keeps the process alive only once a job is open. */
  warm(): void {
    const thread = this.thread;
    if (this.jobs.size === 0) thread.unref();
  }

  post(message: Record<string, unknown>): void {
    this.worker?.postMessage(message);
  }

  /** Forgets a job (answered, or abandoned by a failed pass). */
  end(id: number): void {
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.worker?.unref();
  }
}

const hashWorker = new HashWorker();

/** Starts the thread before its first job: its ~75 ms start-up overlaps the command's own. */
export function startHashThread(): void {
  hashWorker.warm();
}

/** sha256 of `length` bytes of the file at `path` from `offset`, on the hashing thread. */
export function sha256OfFileRange(path: string, offset: number, length: number): Promise<RangeDigest> {
  return hashWorker.start({ file: { path, offset, length } }).result;
}

/** The bytes are passed through a ring of this many slots of SLOT bytes, shared with the worker. */
const SLOTS = 4;
const SLOT = 256 << 10;

/**
 * A streaming sha256 on the hashing thread. `update` copies the bytes into a ring of slots
 * shared with the worker (nothing is allocated per chunk, nothing left for the worker to
 * collect) and waits only while every slot is still being hashed: memory stays at the 1 MiB ring.
 */
export class Sha256Thread {
  private readonly shared = new SharedArrayBuffer(SLOTS * SLOT);
  private readonly ring = Buffer.from(this.shared);
  private readonly busy: boolean[] = new Array<boolean>(SLOTS).fill(false);
  private readonly job: { id: number; result: Promise<RangeDigest> };
  private slot = 0;
  private filled = 0;
  private waiting: (() => void) | undefined;

  constructor() {
    this.job = hashWorker.start({ shared: this.shared }, (slot) => {
      this.busy[slot] = false;
      const wake = this.waiting;
      this.waiting = undefined;
      wake?.();
    });
  }

  private async slotFree(): Promise<void> {
    while (this.busy[this.slot]) await new Promise<void>((resolve) => (this.waiting = resolve));
  }

  /** Hashes `data` (copied: the caller may reuse its buffer at once). */
  async update(data: Uint8Array): Promise<void> {
    for (let at = 0; at < data.length; ) {
      if (this.busy[this.slot]) await this.slotFree();
      const n = Math.min(data.length - at, SLOT - this.filled);
      this.ring.set(data.subarray(at, at + n), this.slot * SLOT + this.filled);
      this.filled += n;
      at += n;
      if (this.filled === SLOT) this.send();
    }
  }

  private send(): void {
    if (this.filled === 0) return;
    this.busy[this.slot] = true;
    hashWorker.post({ id: this.job.id, slot: this.slot, slotSize: SLOT, length: this.filled });
    this.slot = (this.slot + 1) % SLOTS;
    this.filled = 0;
  }

  /** Forgets the job when its digest will not be asked for (a failed pass). */
  abort(): void {
    hashWorker.post({ id: this.job.id, drop: true });
    hashWorker.end(this.job.id);
  }

  /** The digest of everything passed to `update`. */
  async digest(): Promise<RangeDigest> {
    await this.slotFree();
    this.send();
    hashWorker.post({ id: this.job.id, end: true });
    return this.job.result;
  }
}
