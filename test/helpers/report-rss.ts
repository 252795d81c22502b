// Preloaded into the CLI by tests (node --import): reports the process's peak RSS on exit.
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(2, `\nddiff-test-maxrss=${process.resourceUsage().maxRSS}\n`);
});
