import { type Bundle, verifyBundle, withBundle } from '../bundle/read.js';
import type { Engine } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { chooseBase } from '../load/base.js';
import { tempDir } from '../util/cleanup.js';
import { type LoadOptions, neededFromBase } from './load.js';
import type { Reporter } from './report.js';

/** `ddiff verify BUNDLE [--base …]`: every blob checked; with a base, that it has what is needed. Loads nothing. */
export async function verify(path: string, options: LoadOptions, report: Reporter): Promise<void> {
  await withBundle(path, (bundle) => verifyWith(bundle, path, options, report));
}

async function verifyWith(bundle: Bundle, path: string, options: LoadOptions, report: Reporter): Promise<void> {
  await verifyBundle(bundle);
  const needed = neededFromBase(bundle, bundle.metadata.images);
  let baseName: string | null = null;
  if (options.base !== undefined) {
    const spool = await tempDir('ddiff-verify-');
    try {
      let engine: Engine | undefined;
      const base = await chooseBase(
        bundle,
        needed,
        { base: options.base, preferEngine: false },
        spool.path,
        () => (engine ??= chooseEngine(options)),
      );
      baseName = base.kind === 'none' ? null : base.name;
    } finally {
      await spool.dispose();
    }
  }
  const result = { bundle: path, ok: true, blobs: bundle.metadata.blobs.length, needed: needed.length, base: baseName };
  if (options.json) report.out(JSON.stringify(result, null, 2));
  else
    report.out(
      `${path}: OK, ${result.blobs} blob(s) verified${baseName ? `; base ${baseName} holds the ${needed.length} needed layer(s)` : ''}`,
    );
}
