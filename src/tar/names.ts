import { UnsafePathError } from '../errors.js';
import { posix } from 'node:path';

/**
 * The canonical name of an archive entry: relative, `/`-separated, without `./` or a trailing
 * slash. Absolute names and names that climb out of the archive root are refused: ddiff never
 * lets an archive name a place outside itself.
 */
export function normalizeEntryName(name: string): string {
  if (name.startsWith('/')) throw new UnsafePathError(`entry '${name}' has an absolute path`);
  const normalized = posix.normalize(name).replace(/\/+$/, '');
  if (normalized === '..' || normalized.startsWith('../')) {
    throw new UnsafePathError(`entry '${name}' points outside the archive`);
  }
  return normalized === '.' ? '' : normalized;
}

/** Where a symlink entry points, as an entry name; refused when it leaves the archive. */
export function symlinkTarget(entryName: string, linkname: string): string {
  if (linkname.startsWith('/')) {
    throw new UnsafePathError(`symlink '${entryName}' points to an absolute path '${linkname}'`);
  }
  const joined = posix.join(posix.dirname(entryName), linkname);
  try {
    return normalizeEntryName(joined);
  } catch {
    throw new UnsafePathError(`symlink '${entryName}' points outside the archive ('${linkname}')`);
  }
}
