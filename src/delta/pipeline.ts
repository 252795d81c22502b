/**
 * Lets the encoder start the next file's work (binary deltas run on libuv's threads) while
 * earlier records wait their turn: each step's preparation starts at once, its write runs
 * after every earlier write. In-flight work is bounded by count and by bytes held.
 */
export class OrderedPipeline {
  private tail: Promise<void> = Promise.resolve();
  private readonly inflight: { done: Promise<void>; bytes: number }[] = [];
  private held = 0;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  async add<T>(prepare: Promise<T>, bytes: number, write: (value: T) => Promise<void>): Promise<void> {
    // A failure surfaces through the chain (drain or the limiter), never as an unhandled rejection.
    prepare.catch(() => undefined);
    const done = this.tail.then(async () => write(await prepare));
    done.catch(() => undefined);
    this.tail = done;
    this.inflight.push({ done, bytes });
    this.held += bytes;
    while (this.inflight.length > this.maxCount || (this.held > this.maxBytes && this.inflight.length > 0)) {
      const oldest = this.inflight.shift()!;
      this.held -= oldest.bytes;
      await oldest.done;
    }
  }

  /** Waits for every step; throws the first failure. */
  async drain(): Promise<void> {
    await this.tail;
    this.inflight.length = 0;
    this.held = 0;
  }
}
