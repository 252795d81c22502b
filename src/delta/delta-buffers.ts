import { SMALL_DELTA } from './binary-delta.js';
import { CHUNK, DICT_MAX } from './format.js';

/**
 * The buffers binary deltas are made in, reused: a file's bytes gathered and its dictionary
 * read, per delta, were most of an encode's garbage, and V8 lets ~64 MB of dead buffers pile up
 * before it collects them (measured: 160 MB peak RSS on the security-update pair, 120 with
 * reuse). Small deltas get one of SLOTS small buffer pairs (they run on libuv's threads, a few
 * at once); larger ones share one large pair, one at a time (they run on the main thread).
 */
const SLOTS = 4;

interface Pair {
  data: Buffer;
  dictionary: Buffer;
}

export class DeltaBuffers {
  private readonly free: Pair[] = [];
  private made = 0;
  private readonly waiting: ((pair: Pair) => void)[] = [];
  private large: Pair | undefined;
  private largeTurn: Promise<void> = Promise.resolve();

  /** Runs `work` with buffers of `size` and `dictionaryLength` bytes, mine until it settles. */
  async use<T>(size: number, dictionaryLength: number, work: (data: Buffer, dictionary: Buffer) => Promise<T>): Promise<T> {
    if (size + dictionaryLength <= SMALL_DELTA) {
      const pair = await this.acquire();
      try {
        return await work(pair.data.subarray(0, size), pair.dictionary.subarray(0, dictionaryLength));
      } finally {
        this.release(pair);
      }
    }
    const turn = this.largeTurn;
    let done = (): void => undefined;
    this.largeTurn = new Promise((resolve) => {
      done = resolve;
    });
    await turn;
    try {
      this.large ??= { data: Buffer.allocUnsafe(CHUNK), dictionary: Buffer.allocUnsafe(DICT_MAX) };
      return await work(this.large.data.subarray(0, size), this.large.dictionary.subarray(0, dictionaryLength));
    } finally {
      done();
    }
  }

  private async acquire(): Promise<Pair> {
    const pair = this.free.pop();
    if (pair !== undefined) return pair;
    if (this.made < SLOTS) {
      this.made++;
      return { data: Buffer.allocUnsafe(SMALL_DELTA), dictionary: Buffer.allocUnsafe(SMALL_DELTA) };
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(pair: Pair): void {
    const next = this.waiting.shift();
    if (next !== undefined) next(pair);
    else this.free.push(pair);
  }
}
