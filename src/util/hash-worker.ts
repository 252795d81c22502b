import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { WORKER_CODE } from './hash-worker-code.js';
import type { Digest } from './digest.js';

/**
 * sha256 is the main CPU cost of checking layers (~0.6 s per 100 MB on these machines' cores):
 * on the main thread it adds to every pass that also decodes, compresses or copies. Here it runs
 * on a worker thread, beside that work, on a machine with a second core. One thread serves every
 * hash at once (an isolate costs ~13-20 MB of memory, and the main thread's own work takes the
 * other core); file ranges are hashed a slice at a time so that streams sharing it never wait
 * long (util/hash-worker-code.ts). File-to-file copies that are most of a pass's work may run
 * beside each other on two threads (see copyFileRangeHashed's `beside`).
 */

export interface RangeDigest {
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
  /** The system error's code (ENOSPC), when the thread's failure had one. */
  code?: string;
}

interface Job {
  resolve: (digest: RangeDigest) => void;
  reject: (error: Error) => void;
  freed?: (slot: number) => void;
}

/** One hashing thread: started on first use, unreferenced while it has no job. */
class HashThread {
  private worker: Worker | undefined;
  readonly jobs = new Map<number, Job>();
  /** The thread runs its code (~110 ms after it was started here, the main thread busy meanwhile). */
  online = false;

  private get thread(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_CODE, { eval: true });
    worker.on('message', (reply: Reply) => this.answer(reply));
    worker.once('online', () => (this.online = true));
    const fail = (error: Error) => {
      this.worker = undefined;
      this.online = false;
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
    if (reply.error !== undefined) job.reject(Object.assign(new Error(reply.error), reply.code ? { code: reply.code } : {}));
    else job.resolve({ digest: reply.digest!, size: reply.size ?? 0 });
  }

  /** Starts job `id`; the worker keeps the process alive only while some job is open. */
  start(id: number, first: Record<string, unknown>, freed?: (slot: number) => void): Promise<RangeDigest> {
    const result = new Promise<RangeDigest>((resolve, reject) => {
      this.jobs.set(id, { resolve, reject, ...(freed ? { freed } : {}) });
    });
    result.catch(() => undefined);
    const thread = this.thread;
    thread.ref();
    thread.postMessage({ id, ...first });
    return result;
  }

  /** Boots the thread now; it keeps the process alive only once a job is open. */
  warm(): void {
    const thread = this.thread;
    if (this.jobs.size === 0) thread.unref();
  }

  post(message: Record<string, unknown>): void {
    this.worker?.postMessage(message);
  }

  /** Abandons a job: the thread stops it, and its result rejects with `error`. */
  cancel(id: number, error: Error): void {
    const job = this.jobs.get(id);
    this.post({ id, drop: true });
    this.end(id);
    job?.reject(error);
  }

  /** Forgets a job (answered, or abandoned by a failed pass). */
  private end(id: number): void {
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.worker?.unref();
  }
}

/** Threads for copies: a second only where there is a second core for it. */
const COPY_THREADS = Math.min(2, availableParallelism());

/** The hashing threads: the first takes every job, but copies run `beside` each other on whichever has least to do. */
class HashThreads {
  private readonly threads = [new HashThread()];
  /** The thread of each open job, for its messages (a stream's slots) and its cancel. */
  private readonly owners = new Map<number, HashThread>();
  private nextId = 1;

  get online(): boolean {
    return this.threads[0]!.online;
  }

  start(first: Record<string, unknown>, freed?: (slot: number) => void): { id: number; result: Promise<RangeDigest> } {
    return this.startOn(this.threads[0]!, first, freed);
  }

  /** Starts a file-to-file copy: `beside` others, on an idle thread (a second one started for it if need be). */
  startCopy(first: Record<string, unknown>, beside: boolean): { id: number; result: Promise<RangeDigest> } {
    if (!beside) return this.start(first);
    let thread = this.threads.find((t) => t.jobs.size === 0);
    if (!thread && this.threads.length < COPY_THREADS) {
      thread = new HashThread();
      this.threads.push(thread);
    }
    return this.startOn(thread ?? this.threads.reduce((a, b) => (b.jobs.size < a.jobs.size ? b : a)), first);
  }

  private startOn(thread: HashThread, first: Record<string, unknown>, freed?: (slot: number) => void) {
    const id = this.nextId++;
    this.owners.set(id, thread);
    const result = thread.start(id, first, freed);
    const forget = () => this.owners.delete(id);
    result.then(forget, forget);
    return { id, result };
  }

  /** Boots the first thread now; it keeps the process alive only once a job is open. */
  warm(): void {
    this.threads[0]!.warm();
  }

  /** A message for an open job (`id`), to its thread. */
  post(message: { id: number } & Record<string, unknown>): void {
    this.owners.get(message.id)?.post(message);
  }

  /** Abandons a job: its thread stops it, and its result rejects with `error`. */
  cancel(id: number, error: Error): void {
    this.owners.get(id)?.cancel(id, error);
  }
}

export const hashWorker = new HashThreads();

/** Starts the thread before its first job: its start-up (~110 ms here) overlaps the command's own. */
export function startHashThread(): void {
  hashWorker.warm();
}

/** Past this many bytes a stream or range is hashed on the hashing thread; smaller ones (configs, manifests) here. */
export const ON_THREAD_AFTER = 1 << 20;

/**
 * Ranges up to this size are hashed on the calling thread while the hashing thread boots: a
 * 1.8 MB delta bundle took 120 ms to verify waiting for it, against 1-2 ms of hashing (16 MB:
 * 11 ms here, 93 ms on cores without SHA extensions).
 */
const HERE_WHILE_BOOTING = 16 << 20;

/** sha256 of `length` bytes of the file at `path` from `offset`: small ranges here, others on the hashing thread once it runs. */
export function sha256OfFileRange(path: string, offset: number, length: number): Promise<RangeDigest> {
  if (length <= ON_THREAD_AFTER || (!hashWorker.online && length <= HERE_WHILE_BOOTING)) return sha256Here(path, offset, length);
  return hashWorker.start({ file: { path, offset, length } }).result;
}

/**
 * Copies `length` bytes of the file at `path` from `offset` into the file `to.path` at
 * `to.position`, hashing them on the way, all on a hashing thread: the main thread neither
 * moves nor collects a byte of it. `beside`: the copy runs beside others, on a second thread
 * when the first is busy. `drop` abandons the copy (it stops within a MiB).
 */
export function copyFileRangeHashed(
  path: string,
  offset: number,
  length: number,
  to: { path: string; position: number },
  beside = false,
): { result: Promise<RangeDigest>; drop(error: Error): void } {
  const job = hashWorker.startCopy({ file: { path, offset, length }, to }, beside);
  return { result: job.result, drop: (error) => hashWorker.cancel(job.id, error) };
}

async function sha256Here(path: string, offset: number, length: number): Promise<RangeDigest> {
  const file = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(Math.min(length, 1 << 20));
    let size = 0;
    for (let n = -1; size < length && n !== 0; size += n) {
      ({ bytesRead: n } = await file.read(buffer, 0, Math.min(buffer.length, length - size), offset + size));
      hash.update(buffer.subarray(0, n));
    }
    return { digest: `sha256:${hash.digest('hex')}`, size };
  } finally {
    await file.close();
  }
}
