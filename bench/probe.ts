// Preloaded into measured node processes (node --import): at exit, prints their own peak RSS,
// CPU time and bytes read/written (from /proc/self/io) as one JSON line on stderr.
import { readFileSync, writeSync } from 'node:fs';

process.on('exit', () => {
  const usage = process.resourceUsage();
  let io = { rchar: 0, wchar: 0 };
  try {
    const text = readFileSync('/proc/self/io', 'utf8');
    io = {
      rchar: Number(/rchar: (\d+)/.exec(text)?.[1] ?? 0),
      wchar: Number(/wchar: (\d+)/.exec(text)?.[1] ?? 0),
    };
  } catch {
    // not Linux: no byte counts
  }
  const probe = { maxRss: usage.maxRSS * 1024, cpu: (usage.userCPUTime + usage.systemCPUTime) / 1e6, ...io };
  writeSync(2, `\nddiff-probe=${JSON.stringify(probe)}\n`);
});
