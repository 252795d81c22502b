#!/usr/bin/env -S node --max-semi-space-size=4
// The flag caps V8's young generation at 2×4 MB (16 MB each by default): ddiff allocates fast
// and keeps little, so the smaller one costs no time and ~15 MB of peak RSS. SEA builds and the
// bench pass it the same way (bench/measure.ts reads it from this line).
import module from 'node:module';

// Node's compile cache (in the system's temp dir) before anything else is loaded: start-up is
// most of a small command's time. This file imports nothing else statically for that reason.
module.enableCompileCache?.();
await import('./program.js');
