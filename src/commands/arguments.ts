import { UsageError } from '../errors.js';

/** `load BUNDLE` or `load -i BUNDLE`, as `docker load -i`: exactly one of them. */
export function bundleArgument(positional: string | undefined, input: string | undefined): string {
  if (positional !== undefined && input !== undefined)
    throw new UsageError(`load: give the bundle once, as BUNDLE or -i ${input}, not both`);
  const bundle = positional ?? input;
  if (bundle === undefined) throw new UsageError('load: no bundle given (ddiff load BUNDLE, or ddiff load -i BUNDLE)');
  return bundle;
}

/**
 * Expands glob patterns among inputs (quoted by the user so the shell left them). The base is
 * one image: a pattern in its place matching several files is refused, not cut to its first match.
 */
export async function expandGlobs(inputs: string[], firstIsBase: boolean): Promise<string[]> {
  // fast-glob costs 30 ms to load: not for inputs that hold none of its special characters.
  if (!inputs.some((input) => /[*?[\]{}()!+@]/.test(input))) return inputs;
  const { default: fg } = await import('fast-glob');
  const out: string[] = [];
  for (const [index, input] of inputs.entries()) {
    if (!fg.isDynamicPattern(input)) {
      out.push(input);
      continue;
    }
    const matches = (await fg(input, { onlyFiles: false })).sort();
    if (matches.length === 0) throw new UsageError(`no file matches '${input}'`);
    if (index === 0 && firstIsBase && matches.length > 1) {
      throw new UsageError(
        `the base '${input}' matches ${matches.length} files (${matches.slice(0, 3).join(', ')}${matches.length > 3 ? ', …' : ''}); the base is one image: name one file (patterns are for targets)`,
      );
    }
    out.push(...matches);
  }
  return out;
}
