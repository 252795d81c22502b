import { hashWorker, type RangeDigest } from './hash-worker.js';

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
  /** Why the job ended before its digest (the thread stopped): no slot will be freed again. */
  private failed: Error | undefined;

  constructor() {
    this.job = hashWorker.start({ shared: this.shared }, (slot) => {
      this.busy[slot] = false;
      this.wake();
    });
    this.job.result.catch((error: unknown) => {
      this.failed = error instanceof Error ? error : new Error(String(error));
      this.wake();
    });
  }

  private wake(): void {
    const wake = this.waiting;
    this.waiting = undefined;
    wake?.();
  }

  private async slotFree(): Promise<void> {
    while (this.busy[this.slot]) {
      if (this.failed) throw this.failed;
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
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
    hashWorker.cancel(this.job.id, new Error('the hash was abandoned'));
  }

  /** The digest of everything passed to `update`. */
  async digest(): Promise<RangeDigest> {
    await this.slotFree();
    this.send();
    hashWorker.post({ id: this.job.id, end: true });
    return this.job.result;
  }
}
