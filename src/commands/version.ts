import { engineVersions } from '../engine/versions.js';
import { VERSION } from '../version.js';
import type { Reporter } from './report.js';
import { toJson } from './json.js';

/** `ddiff version` / `ddiff --version`: ddiff's, Node's and each engine's version. */
export async function version(options: { json?: boolean }, report: Reporter): Promise<void> {
  const engines = await engineVersions();
  if (options.json) {
    report.out(toJson({ ddiff: VERSION, node: process.version, engines }));
    return;
  }
  const lines = [`ddiff ${VERSION}`, `node ${process.version}`];
  for (const e of engines) {
    const parts = e.client === null ? [] : [`client ${e.client}`, ...(e.server ? [`server ${e.server}`] : [])];
    lines.push(`${e.name} ${parts.join(', ') || '-'}${e.error ? ` (${e.error})` : ''}`);
  }
  report.out(lines.join('\n'));
}
