// Longer than most modules because it is the whole command-line table: every command and option, in one place.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { DiffOptions } from './commands/diff.js';
import type { Reporter } from './commands/report.js';
import type { BuildOptions } from './commands/build.js';
import type { HaveOptions } from './commands/have.js';
import type { LoadOptions } from './commands/load.js';
import { configureProgress } from './util/progress.js';
import { DdiffError, errorMessage, ExitCode, UsageError } from './errors.js';
import { isInterrupted } from './util/cleanup.js';

const engineOption = () =>
  new Option('--engine <name>', 'container engine for image references (env DDIFF_ENGINE)').choices(['docker', 'podman', 'containerd']);
const tlsVerifyOption = () =>
  new Option(
    '--tls-verify <bool>',
    'for docker:// registries: verify TLS certificates (false: also plain HTTP; loopback is always plain HTTP)',
  )
    .choices(['true', 'false'])
    .argParser((value: string) => {
      if (value !== 'true' && value !== 'false') throw new InvalidArgumentError('expected true or false');
      return value === 'true';
    });
const namespaceOption = () =>
  new Option('--namespace <ns>', 'containerd namespace (env CONTAINERD_NAMESPACE; default k8s.io when it exists, else default)');

function out(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function buildProgram(): Command {
  const program = new Command('ddiff')
    .description('Ship only the image layers an offline host lacks, and rebuild the image there.')
    .version('0.1.0', '-v, --version')
    .showHelpAfterError('(run ddiff --help for usage)')
    .option('-q, --quiet', 'no progress output')
    .hook('preAction', (command, action) => configureProgress({ quiet: Boolean(command.opts().quiet || action.opts().quiet) }))
    .enablePositionalOptions()
    .exitOverride();

  program
    .command('list')
    .description('list the images, platforms and layers of archives, directories or local images')
    .argument('<input...>', 'archive file, layout directory, - (stdin), image reference, or docker://HOST/REPO:TAG')
    .option('--json', 'print JSON (full sha256: digests)')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: { json?: boolean; engine?: string }) => {
      const { list } = await import('./commands/list.js');
      await list(inputs, options, out);
    });

  program
    .command('diff')
    .description("write a bundle of the target images' layers that the base lacks")
    .usage('[options] BASE TARGET...  |  --have FILE TARGET...')
    .argument('<inputs...>', 'the base, then the target(s): image references, archive files (globs allowed) or layout directories')
    .option('--have <file>', "the base host's have-list (from ddiff have --json) instead of a base image")
    .option('-o, --output <file>', 'bundle file (- for stdout; default <name>_<tag>.ddiff)')
    .option('-q, --quiet', 'no progress output')
    .option('--compress <method>', 'how layers that arrive uncompressed are stored: zstd, gzip or none', 'zstd')
    .option('--level <n>', 'compression level (zstd 1-19, default 3; gzip 1-9, default 6)')
    .option('--platform <os/arch[/variant]>', 'platform to take from multi-platform targets (default: this host)')
    .option('--no-delta', 'store every new layer whole (default: a layer of a rebuilt base may be a file-level delta)')
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: DiffOptions) => {
      const { diff } = await import('./commands/diff.js');
      await diff(await expandGlobs(inputs), options, reporter);
    });

  program
    .command('load')
    .description('verify a bundle, rebuild the full image from the base, and load it (or write it with -o)')
    .argument('<bundle>', 'bundle file written by ddiff diff')
    .option('-q, --quiet', 'no progress output')
    .option('--base <ref|archive>', 'where the base layers are (default: the recorded base, else any local image holding them)')
    .option('-o, --output <file>', 'write the rebuilt image archive here instead of loading it (- for stdout)')
    .option('--image <tag|id>', 'load only this image of the bundle')
    .option('--to <docker://HOST/REPO:TAG>', 'push the image into this registry (only the blobs it lacks) instead of loading it')
    .option('--no-fast-path', "always send the complete image (skip Docker's classic-store shortcut)")
    .option('--json', 'print a JSON summary')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .addOption(tlsVerifyOption())
    .action(async (bundle: string, options: LoadOptions) => {
      const { load } = await import('./commands/load.js');
      await load(bundle, options, reporter);
    });

  program
    .command('inspect')
    .description('show what a bundle holds and needs, and its size against the full images')
    .argument('<bundle>')
    .option('--json', 'print JSON')
    .action(async (bundle: string, options: { json?: boolean }) =>
      (await import('./commands/inspect.js')).inspect(bundle, options, reporter),
    );

  program
    .command('verify')
    .description('check every blob of a bundle and, with --base, that the base holds what is needed; loads nothing')
    .argument('<bundle>')
    .option('--base <ref|archive>', 'base to check')
    .option('--json', 'print JSON')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .action(async (bundle: string, options: LoadOptions) => (await import('./commands/verify.js')).verify(bundle, options, reporter));

  program
    .command('have')
    .description('list the diffIDs this host has (all local images, or the given archives) for diff --have')
    .argument('[inputs...]', 'archives or image references (default: every local image)')
    .option('--json', 'print the have-list as JSON (the default when stdout is not a terminal)')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: HaveOptions) => (await import('./commands/have.js')).have(inputs, options, reporter));

  program
    .command('build')
    .description('run docker/podman build with these arguments untouched; with --diff, bundle the result against its FROM')
    .usage('[--diff] [-o FILE] [--engine E] -- <docker build args...>')
    .option('--diff', "write the bundle of the built image against the final stage's base")
    .option('-o, --output <file>', 'bundle file (with --diff)')
    .option('--json', 'print a JSON summary (with --diff)')
    .addOption(engineOption())
    .addOption(namespaceOption())
    .argument('<build-args...>')
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[], options: BuildOptions) => (await import('./commands/build.js')).build(args, options, reporter));

  return program;
}

/** Expands glob patterns among inputs (quoted by the user so the shell left them). */
async function expandGlobs(inputs: string[]): Promise<string[]> {
  const { default: fg } = await import('fast-glob');
  const out: string[] = [];
  for (const input of inputs) {
    if (!fg.isDynamicPattern(input)) {
      out.push(input);
      continue;
    }
    const matches = (await fg(input, { onlyFiles: false })).sort();
    if (matches.length === 0) throw new UsageError(`no file matches '${input}'`);
    out.push(...matches);
  }
  return out;
}

const reporter: Reporter = { out, warn: (text) => process.stderr.write(`${text}\n`) };

const SYSTEM_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  EISDIR: 'is a directory',
  ENOTDIR: 'not a directory',
  EROFS: 'read-only file system',
  EPIPE: 'the reader closed the pipe',
};

/** Node's system errors (ENOSPC, EACCES …) as one line naming the path. */
function describeSystemError(error: unknown): unknown {
  if (error instanceof DdiffError || !(error instanceof Error)) return error;
  const { code, path } = error as NodeJS.ErrnoException;
  const text = code ? SYSTEM_ERRORS[code] : undefined;
  if (!text) return error;
  return new DdiffError(path ? `${path}: ${text}` : `${text} (${error.message})`);
}

/**
 * A message as one printable line: control characters (which a hostile archive can put in entry
 * names, tags or JSON it quotes) are shown escaped, so they can neither drive the terminal nor
 * end the line early.
 */
function printable(message: string): string {
  const text = message.replace(/\n+$/, '');
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (thrown) {
    if (thrown instanceof CommanderError) return thrown.exitCode === 0 ? 0 : ExitCode.usage;
    // An interrupt makes the work fail (its streams are cut): the "interrupted" line says why.
    if (isInterrupted()) return new Promise<number>(() => undefined);
    const error = describeSystemError(thrown);
    const prefix = process.env.NO_COLOR || !process.stderr.isTTY ? 'ddiff: error: ' : '\u001b[31mddiff: error:\u001b[0m ';
    process.stderr.write(`${prefix}${printable(errorMessage(error))}\n`);
    if (process.env.DDIFF_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return error instanceof DdiffError ? error.exitCode : ExitCode.failure;
  }
}

// A reader that stops early (`ddiff list … | head`, or `-o - | ssh …` failing) closes stdout:
// end as a process killed by SIGPIPE would (141), without a stack trace; temp files still go.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(141);
  throw error;
});

let settled = false;
main(process.argv).then((code) => {
  settled = true;
  process.exitCode = code;
});
// Nothing left to wait for, yet the command has not finished (a stream nobody reads or ends):
// a failure, never a silent exit 0.
process.on('beforeExit', () => {
  if (settled) return;
  settled = true;
  process.stderr.write('ddiff: error: internal error: the command stopped before finishing (a stream was left waiting)\n');
  process.exitCode = 1;
});
