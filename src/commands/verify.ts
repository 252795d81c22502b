import { type Bundle, verifyBundle, withBundle } from '../bundle/read.js';
import type { Engine } from '../engine/engine.js';
import { chooseEngine } from '../engine/choose.js';
import { errorCode, errorMessage } from '../errors.js';
import { chooseBase } from '../load/base.js';
import { tempDir } from '../util/cleanup.js';
import type { Digest } from '../util/digest.js';
import { baseJson, toJson } from './json.js';
import { type LoadOptions, neededFromBase } from './load.js';
import type { Reporter } from './report.js';

/** `ddiff verify BUNDLE [--base …]`: every blob checked; with a base, that it has what is needed. Loads nothing. */
export async function verify(path: string, options: LoadOptions, report: Reporter): Promise<void> {
  await withBundle(path, (bundle) => verifyWith(bundle, path, options, report));
}

async function verifyWith(bundle: Bundle, path: string, options: LoadOptions, report: Reporter): Promise<void> {
  const needed = neededFromBase(bundle, bundle.metadata.images);
  const result = {
    bundle: path,
    ok: true,
    blobs: bundle.metadata.blobs.length,
    needed: needed.length,
    base: baseJson(bundle.metadata.base),
  };
  let baseSource: string | null = null;
  try {
    await verifyBundle(bundle);
    baseSource = await checkBase(bundle, needed, options);
  } catch (error) {
    // A script asking for JSON gets the verdict as JSON too, then the error (on stderr) and exit code.
    if (options.json)
      report.out(toJson({ ...result, ok: false, baseSource, error: { code: errorCode(error), message: errorMessage(error) } }));
    throw error;
  }
  if (options.json) report.out(toJson({ ...result, baseSource }));
  // -q: the exit code is the verdict.
  else if (!report.quiet)
    report.out(
      `${path}: OK, ${result.blobs} blob(s) verified${baseSource ? `; base ${baseSource} holds the ${needed.length} needed layer(s)` : ''}`,
    );
}

/** With `--base`: where the needed layers were found (it throws when they are not all there). */
async function checkBase(bundle: Bundle, needed: Digest[], options: LoadOptions): Promise<string | null> {
  if (options.base === undefined) return null;
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
    return base.kind === 'none' ? null : base.name;
  } finally {
    await spool.dispose();
  }
}
