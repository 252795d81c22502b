import { pipeline, type Readable, type Transform } from 'node:stream';
import { countingStream } from './counting-stream.js';
import { humanSize } from './format.js';

/**
 * Progress of the long steps (verify, list, diff's staging, the rebuild) on stderr — only when
 * stderr is a terminal and not silenced with -q, so pipes and logs stay clean. One line per
 * step, "verifying  layer 3/12  120 MB/400 MB  35 MB/s  ETA 8s", redrawn at most every 200 ms.
 */
let enabled = false;

export function configureProgress(options: { quiet?: boolean }): void {
  enabled = !options.quiet && process.stderr.isTTY === true;
}

export interface Step {
  /** A pass-through counting the bytes of item `index` (0-based) as they flow. */
  stream(index: number): Transform;
  /** `source` with its bytes counted as item `index` (its errors carried on). */
  counted(source: Readable, index: number): Readable;
  /** `bytes` of item `index` were read without a stream (all at once, or piece by piece). */
  done(index: number, bytes: number): void;
  /** Ends the line (call once, also after a failure). */
  finish(): void;
}

/** Starts the progress line of a step over items of the given sizes. */
export function startStep(name: string, sizes: number[]): Step {
  const total = sizes.reduce((n, s) => n + s, 0);
  const started = Date.now();
  let bytes = 0;
  let current = 0;
  let lastDraw = 0;
  let drawn = false;
  const draw = (final: boolean) => {
    if (!enabled || sizes.length === 0) return;
    const now = Date.now();
    if (!final && now - lastDraw < 200) return;
    lastDraw = now;
    drawn = true;
    const rate = bytes / Math.max((now - started) / 1000, 0.001);
    const eta = rate > 0 && total > bytes ? `  ETA ${Math.ceil((total - bytes) / rate)}s` : '';
    const line = `${name}  layer ${Math.min(current, sizes.length)}/${sizes.length}  ${humanSize(bytes)}/${humanSize(total)}  ${humanSize(rate)}/s${final ? '' : eta}`;
    process.stderr.write(`\r\u001b[2K${line}${final ? '\n' : ''}`);
  };
  const begin = (index: number) => {
    current = Math.max(current, index + 1);
  };
  return {
    stream(index) {
      begin(index);
      return countingStream((n) => {
        bytes += n;
        draw(false);
      });
    },
    counted(source, index) {
      return pipeline(source, this.stream(index), () => undefined);
    },
    done(index, size) {
      begin(index);
      bytes += size;
      draw(false);
    },
    finish() {
      if (drawn || bytes > 0) draw(true);
    },
  };
}

/** A step over items that may repeat (a layer shared by images): each key counts once, in first-seen order. */
export function stepOver<T extends { size: number }>(
  name: string,
  items: T[],
  key: (item: T) => string,
): Step & {
  streamOf(item: T): Transform;
  countedOf(source: Readable, item: T): Readable;
  counterOf(item: T): (bytes: number) => void;
  doneWith(item: T): void;
} {
  const unique = [...new Map(items.map((item) => [key(item), item] as const)).values()];
  const index = new Map(unique.map((item, i) => [key(item), i]));
  const step = startStep(
    name,
    unique.map((item) => item.size),
  );
  const at = (item: T) => index.get(key(item)) ?? 0;
  return {
    ...step,
    streamOf: (item) => step.stream(at(item)),
    countedOf: (source, item) => step.counted(source, at(item)),
    counterOf: (item) => (bytes) => step.done(at(item), bytes),
    doneWith: (item) => step.done(at(item), item.size),
  };
}
