/**
 * Lets the encoder start the next file's work (binary deltas run on libuv's threads) while
 * earlier records wait their turn: each step's preparation starts at once, its write runs
 * after every earlier write. In-flight work is bounded by count and by bytes held.
 */
export class OrderedPipeline {
  private tail: Promise<void> = Promise.resolve();
  private readonly inflight: { done: Promise<void>; bytes: number }[] = [];
  private held = 0;
  private unsettled = 0;
  private failure: { error: unknown } | undefined;

  constructor(
    private readonly maxCount: number,
    private readonly maxBytes: number,
  ) {}

  async add<T>(prepare: Promise<T>, bytes: number, write: (value: T) => Promise<void>): Promise<void> {
    // A failure surfaces through the chain (drain or the limiter), never as an unhandled rejection.
    prepare.catch(() => undefined);
    this.unsettled++;
    const done = this.tail.then(async () => write(await prepare));
    done.then(
      () => this.unsettled--,
      (error: unknown) => {
        this.unsettled--;
        this.failure ??= { error };
      },
    );
    this.tail = done;
    this.inflight.push({ done, bytes });
    this.held += bytes;
    while (this.inflight.length > this.maxCount || (this.held > this.maxBytes && this.inflight.length > 0)) {
      const oldest = this.inflight.shift()!;
      this.held -= oldest.bytes;
      await oldest.done;
    }
  }

  /** A step with nothing to prepare: written at once when nothing is in flight (most steps). */
  async step(write: () => Promise<void>): Promise<void> {
    if (this.failure !== undefined) throw this.failure.error;
    if (this.unsettled === 0) return write();
    return this.add(Promise.resolve(), 0, write);
  }

  /** Waits for every step; throws the first failure. */
  async drain(): Promise<void> {
    await this.tail;
    this.inflight.length = 0;
    this.held = 0;
  }
}
