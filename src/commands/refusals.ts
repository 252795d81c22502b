import { RefusedError } from '../errors.js';
import type { Image } from '../image/image.js';
import type { Digest } from '../util/digest.js';

/** `-o -` writes binary data to stdout: refused on a terminal, as `docker save` refuses. */
export function refuseTerminal(output: string | undefined, what: string): void {
  if (output === '-' && process.stdout.isTTY) {
    throw new RefusedError(`refusing to write ${what} to a terminal (-o -): redirect standard output, or pass -o FILE`);
  }
}

/**
 * A target whose every layer the base already has adds nothing: most often BASE and TARGET
 * were swapped, and an empty bundle would only show that after a trip across the air gap.
 */
export function refuseEmpty(target: string, baseName: string, images: { image: Image }[], baseHas: Set<Digest>): void {
  if (images.some(({ image }) => image.layers.some((l) => !baseHas.has(l.diffId)))) return;
  const name = images[0]?.image.tags[0] ?? target;
  throw new RefusedError(
    `${target}: ${name} adds no layer to ${baseName} (are BASE and TARGET swapped? the order is ddiff diff BASE TARGET); pass --allow-empty to write the bundle anyway`,
  );
}
