import v8 from 'node:v8';
import vm from 'node:vm';

/**
 * ddiff's memory is Buffers on their way through streams: read chunks, zlib's input and output,
 * entries queued for a write. They live outside V8's heap, and one still queued when the young
 * generation is collected twice (a few ms with a 4 MB semi-space) is promoted: it is then freed
 * only by a full collection, which V8 starts once such external memory has grown ~64 MB since
 * the last one. With a ~20 MB heap, that sawtooth was most of ddiff's peak RSS: `diff` of the
 * real small image pair held 9–71 MB of Buffers, nearly all garbage (a heap snapshot, which
 * collects first, found 20 MB live), and peaked at 178 MB. Asking for a full collection after
 * every GROWTH of external memory brought it to 132 MB for ~0.1 s more CPU (measured here).
 * Go's collector, which counts all of a process's memory, does this on its own.
 */
const GROWTH = 16 << 20;
const EVERY_MS = 10;

type Collect = (options: { type: 'major'; execution: 'async' }) => void;

let collect: Collect | undefined;

/** `gc`, without `--expose-gc` on the command line (the documented way: flag, then a new context). */
function collector(): Collect | undefined {
  if (collect) return collect;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    if (typeof gc === 'function') collect = gc as Collect;
  } catch {
    // No way to ask for a collection: V8's own schedule it is.
  }
  return collect;
}

/**
 * Starts asking V8 for a full collection whenever external memory has grown by GROWTH since the
 * lowest it was seen after the last one. Runs until stopped (it keeps no process alive).
 */
export function boundExternalMemory(growth = GROWTH): () => void {
  const gc = collector();
  if (!gc) return () => undefined;
  let floor = v8.getHeapStatistics().external_memory;
  const timer = setInterval(() => {
    const external = v8.getHeapStatistics().external_memory;
    if (external < floor) floor = external;
    else if (external - floor >= growth) {
      gc({ type: 'major', execution: 'async' });
      floor = external;
    }
  }, EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
