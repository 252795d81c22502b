import { Transform } from 'node:stream';
import { humanSize } from './format.js';

/**
 * Per-layer progress on stderr — only when stderr is a terminal and not silenced with -q, so
 * pipes and logs stay clean. One line per stream, redrawn at most every 200 ms.
 */
let enabled = false;

export function configureProgress(options: { quiet?: boolean }): void {
  enabled = !options.quiet && process.stderr.isTTY === true;
}

/** A pass-through that reports bytes, rate and ETA of `label` while data flows. */
export function progress(label: string, total: number): Transform {
  let done = 0;
  const started = Date.now();
  let lastDraw = 0;
  const draw = (final: boolean) => {
    const seconds = Math.max((Date.now() - started) / 1000, 0.001);
    const rate = done / seconds;
    const eta = rate > 0 && total > done ? Math.ceil((total - done) / rate) : 0;
    const line = `${label}  ${humanSize(done)}/${humanSize(total)}  ${humanSize(rate)}/s${final ? '' : `  ETA ${eta}s`}`;
    process.stderr.write(`\r\u001b[2K${line}${final ? '\n' : ''}`);
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      done += chunk.length;
      if (enabled && Date.now() - lastDraw > 200) {
        lastDraw = Date.now();
        draw(false);
      }
      callback(null, chunk);
    },
    flush(callback) {
      if (enabled) draw(true);
      callback();
    },
  });
}
