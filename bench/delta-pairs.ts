/**
 * Issue 11's pairs: real "the base was rebuilt" images from ../shared/delta/make-pairs.sh
 * (docker-save archives under DIR/images, layer tars under DIR). For each pair: the bundle with
 * deltas against the whole-layer bundle (--no-delta) and gzip -6 of the new layer, `diff` and
 * `load -o` times per 100 MB of delta'd layer, peak RSS, and the rebuilt image's ID checked
 * against the target's; and the bundle `diff --have` makes from the base's `have --files` list
 * (references by hash, no base bytes), loaded back and checked too.
 */
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { attempt, ddiff, MB, median, output, record, type Row } from './measure.js';

interface Pair {
  name: string;
  base: string;
  target: string;
  /** The target's new layer tar (for gzip -6 and the per-100 MB figures). */
  layer: string;
  /** Delta bundle at most this fraction of the whole-layer bundle. */
  within: number;
}

export const DELTA_PAIRS: Pair[] = [
  { name: 'rebuilt base, only mtimes differ', base: 'base-A', target: 'base-B', layer: 'B.tar', within: 1 / 100 },
  { name: 'rebuilt base + security updates', base: 'base-A', target: 'base-B3', layer: 'B3.tar', within: 1 / 20 },
  { name: 'rebuilt base + one new package', base: 'base-A', target: 'base-B2', layer: 'B2.tar', within: 1 },
  { name: 'app layer, 5 % of files edited', base: 'app-old', target: 'app-new', layer: 'app-new.tar', within: 1 / 10 },
];

function imageId(archive: string): Promise<string> {
  return ddiff(['list', '--json', archive]).then((r) => (JSON.parse(r.stdout) as { images: { id: string }[] }).images[0]!.id);
}

/** Runs the pairs found under `dir`; false when they are not there (make-pairs.sh not run). */
export async function deltaPairsBench(dir: string, scratch: string): Promise<boolean> {
  if (!existsSync(join(dir, 'images', 'base-A.tar'))) {
    process.stderr.write(`delta pairs: ${dir}/images not found; make them with ../shared/delta/make-pairs.sh ${dir}\n`);
    return false;
  }
  for (const pair of DELTA_PAIRS) {
    const size = `δ ${pair.target}`;
    const base = join(dir, 'images', `${pair.base}.tar`);
    const target = join(dir, 'images', `${pair.target}.tar`);
    const layerBytes = statSync(join(dir, pair.layer)).size;
    const per100 = layerBytes / (100 * MB);
    await attempt(size, pair.name, undefined, async () => {
      const gzipSize = Number(output(`gzip -6 -c ${join(dir, pair.layer)} | wc -c`));
      const whole = join(scratch, 'whole.ddiff');
      const delta = join(scratch, 'delta.ddiff');
      await ddiff(['diff', base, target, '-o', whole, '--no-delta']);
      const wholeSize = statSync(whole).size;
      const d = await median(() => ddiff(['diff', base, target, '-o', delta]));
      const deltaSize = statSync(delta).size;
      const out = join(scratch, 'out.tar');
      // The previous run's output is removed first, outside the timing (as the real pairs' load -o
      // and its cp floor): replacing a 180 MB file cost the rename 65-90 ms here.
      const l = await median(
        () => ddiff(['load', delta, '--base', base, '-o', out]),
        async () => rmSync(out, { force: true }),
      );
      const [got, want] = await Promise.all([imageId(out), imageId(target)]);
      if (got !== want) throw new Error(`load -o rebuilt ${got}, the target is ${want}`);
      // The offline host sent a have-list with its base's file hashes (have --files): no base bytes here.
      const haveList = join(scratch, 'have.json');
      writeFileSync(haveList, (await ddiff(['have', '--files', '--json', base])).stdout);
      const fromHave = join(scratch, 'have.ddiff');
      await ddiff(['diff', '--have', haveList, target, '-o', fromHave]);
      await ddiff(['load', fromHave, '--base', base, '-o', out]);
      const haveId = await imageId(out);
      if (haveId !== want) throw new Error(`load -o of the have-list bundle rebuilt ${haveId}, the target is ${want}`);
      const haveSize = statSync(fromHave).size;
      const rows: Row[] = [
        {
          size,
          step: `bundle: whole-layer bundle (gzip -6 of the layer ${(gzipSize / MB).toFixed(2)} MB)`,
          m: { wall: 0 },
          bundle: wholeSize,
        },
        {
          size,
          step: `bundle: delta (${pair.name})`,
          m: { wall: 0 },
          bundle: deltaSize,
          baseline: 'whole-layer bundle',
          ratio: deltaSize / wholeSize,
          target: `≤ ${pair.within.toPrecision(2)}`,
        },
        {
          size,
          step: `bundle: delta from a have-list (have --files, ${(statSync(haveList).size / MB).toFixed(2)} MB; no base bytes, image ID checked)`,
          m: { wall: 0 },
          bundle: haveSize,
          baseline: 'whole-layer bundle',
          ratio: haveSize / wholeSize,
        },
        {
          size,
          step: 'diff, s per 100 MB of layer',
          m: d,
          baseline: `${(layerBytes / MB).toFixed(0)} MB layer`,
          ratio: d.wall / per100,
          target: '≤ 1.5',
        },
        {
          size,
          step: 'load -o, s per 100 MB of layer (image ID checked)',
          m: l,
          baseline: `${(layerBytes / MB).toFixed(0)} MB layer`,
          ratio: l.wall / per100,
          target: '≤ 1.5',
        },
      ];
      for (const row of rows) record(row);
    });
  }
  return true;
}
