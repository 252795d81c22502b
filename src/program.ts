// Longer than most modules because it is the whole command-line table: every command and option, in one place.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { DiffOptions } from './commands/diff.js';
import type { Reporter } from './commands/report.js';
import type { BuildOptions } from './commands/build.js';
import type { HaveOptions } from './commands/have.js';
import type { LoadOptions } from './commands/load.js';
import type { CompletionCommand } from './commands/completion.js';
import { configureProgress } from './util/progress.js';
import { DdiffError, ExitCode, UsageError } from './errors.js';
import { describeSystemError, reportError, wantsJson } from './error-line.js';
import { bundleArgument, expandGlobs } from './commands/arguments.js';
import { isInterrupted } from './util/cleanup.js';
import { boundExternalMemory } from './util/memory.js';
import { startHashThread } from './util/hash-worker.js';

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

/** `-q`, `--json`, `--engine` and `--namespace`, which every command takes (some have no use for one: then it changes nothing). */
function withCommonOptions(command: Command): Command {
  return command
    .option('-q, --quiet', 'no progress output and no summary line')
    .option('--json', 'print JSON (on stdout; errors as JSON on stderr)')
    .addOption(engineOption())
    .addOption(namespaceOption());
}

function out(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** The last usage error commander reported, as one line naming the command's help. */
let usageLine: string | undefined;

function buildProgram(): Command {
  const program = new Command('ddiff')
    .description('Ship only the image layers an offline host lacks, and rebuild the image there.')
    .option('-v, --version', "print ddiff's, Node's and the engines' versions")
    .option('-q, --quiet', 'no progress output')
    .hook('preAction', (command, action) => {
      reporter.quiet = Boolean(command.opts().quiet || action.opts().quiet);
      configureProgress({ quiet: reporter.quiet });
    })
    .enablePositionalOptions()
    .exitOverride();

  withCommonOptions(program.command('list'))
    .description('list the images, platforms and layers of archives, directories or local images')
    .argument('<input...>', 'archive file, layout directory, - (stdin), transport:path, image reference, or docker://HOST/REPO:TAG')
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: { json?: boolean; engine?: string }) => {
      const { list } = await import('./commands/list.js');
      await list(inputs, options, out);
    });

  withCommonOptions(program.command('diff'))
    .description("write a bundle of the target images' layers that the base lacks")
    .usage('[options] BASE TARGET...  |  --have FILE TARGET...')
    .argument('<inputs...>', 'the base, then the target(s): image references, archive files (globs allowed) or layout directories')
    .option('--have <file>', "the base host's have-list (from ddiff have --json) instead of a base image")
    .option('-o, --output <file>', 'bundle file (- for stdout; default <name>_<tag>.ddiff)')
    .option('--compress <method>', 'how layers that arrive uncompressed are stored: zstd, gzip or none', 'zstd')
    .option('--level <n>', 'compression level (zstd 1-19, default 3; gzip 1-9, default 6)')
    .option('--platform <os/arch[/variant]>', 'platform to take from multi-platform targets (default: this host)')
    .option('--no-delta', 'store every new layer whole (default: a layer of a rebuilt base may be a file-level delta)')
    .option('--allow-empty', 'write the bundle even when a target adds no layer to the base')
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: DiffOptions) => {
      startHashThread();
      const { diff } = await import('./commands/diff.js');
      await diff(await expandGlobs(inputs, options.have === undefined), options, reporter);
    });

  withCommonOptions(program.command('load'))
    .description('verify a bundle, rebuild the full image from the base, and load it (or write it with -o)')
    .argument('[bundle]', 'bundle file written by ddiff diff (- for stdin)')
    .option('-i, --input <bundle>', 'the bundle (as docker load -i)')
    .option('--base <ref|archive>', 'where the base layers are (default: the recorded base, else any local image holding them)')
    .option('-o, --output <file>', 'write the rebuilt image archive here instead of loading it (- for stdout)')
    .option('--image <tag|id>', 'load only this image of the bundle')
    .option('--to <docker://HOST/REPO:TAG>', 'push the image into this registry (only the blobs it lacks) instead of loading it')
    .option('--no-fast-path', "always send the complete image (skip Docker's classic-store shortcut)")
    .addOption(tlsVerifyOption())
    .action(async (bundle: string | undefined, options: LoadOptions & { input?: string }) => {
      startHashThread();
      const { load } = await import('./commands/load.js');
      await load(bundleArgument(bundle, options.input), options, reporter);
    });

  withCommonOptions(program.command('inspect'))
    .description('show what a bundle holds and needs, and its size against the full images')
    .argument('<bundle>')
    .action(async (bundle: string, options: { json?: boolean }) =>
      (await import('./commands/inspect.js')).inspect(bundle, options, reporter),
    );

  withCommonOptions(program.command('verify'))
    .description('check every blob of a bundle and, with --base, that the base holds what is needed; loads nothing')
    .argument('<bundle>')
    .option('--base <ref|archive>', 'base to check')
    .action(async (bundle: string, options: LoadOptions) => (await import('./commands/verify.js')).verify(bundle, options, reporter));

  withCommonOptions(program.command('have'))
    .description('list the diffIDs this host has (all local images, or the given archives) for diff --have')
    .argument('[inputs...]', 'archives or image references (default: every local image)')
    .option('--files', "also hash every file of the given images' layers, so diff --have can refer to them when the base was rebuilt")
    .addOption(tlsVerifyOption())
    .action(async (inputs: string[], options: HaveOptions) => (await import('./commands/have.js')).have(inputs, options, reporter));

  withCommonOptions(program.command('build'))
    .description('run docker/podman build with these arguments untouched; with --diff, bundle the result against its FROM')
    .usage('[--diff] [-o FILE] [--engine E] -- <docker build args...>')
    .option('--diff', "write the bundle of the built image against the final stage's base")
    .option('-o, --output <file>', 'bundle file (with --diff)')
    .option('--allow-empty', 'write the bundle even when the built image adds no layer (with --diff)')
    .argument('<build-args...>')
    .passThroughOptions()
    .allowUnknownOption()
    .action(async (args: string[], options: BuildOptions) => (await import('./commands/build.js')).build(args, options, reporter));

  withCommonOptions(program.command('version'))
    .description("print ddiff's, Node's and the container engines' versions")
    .action(async (options: { json?: boolean }) => (await import('./commands/version.js')).version(options, reporter));

  withCommonOptions(program.command('completion'))
    .description('print a shell completion script: source <(ddiff completion bash)')
    .argument('<shell>', 'bash, zsh or fish')
    .action(async (shell: string) => (await import('./commands/completion.js')).completion(shell, completionCommands(program), reporter));

  for (const command of [program, ...program.commands]) {
    command.configureOutput({
      outputError: (text) => {
        const where = command === program ? 'ddiff --help' : `ddiff ${command.name()} --help`;
        usageLine = `${text.trim().replace(/^error: /, '')} (see ${where})`;
      },
    });
  }
  return program;
}

function completionCommands(program: Command): CompletionCommand[] {
  return program.commands.map((c) => ({
    name: c.name(),
    description: c.description(),
    flags: c.options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined)),
  }));
}

const reporter: Reporter = { out, warn: (text) => process.stderr.write(`${text}\n`) };

export async function main(argv: string[]): Promise<number> {
  boundExternalMemory();
  const program = buildProgram();
  // `ddiff --version` is `ddiff version`: the engines' versions matter as much as ddiff's.
  const args = argv[2] === '--version' || argv[2] === '-v' ? [...argv.slice(0, 2), 'version', ...argv.slice(3)] : argv;
  try {
    await program.parseAsync(args);
    return 0;
  } catch (thrown) {
    if (thrown instanceof CommanderError) {
      if (thrown.exitCode === 0) return 0;
      if (usageLine !== undefined) reportError(new UsageError(usageLine), wantsJson(args));
      return ExitCode.usage;
    }
    // An interrupt makes the work fail (its streams are cut): the "interrupted" line says why.
    if (isInterrupted()) return new Promise<number>(() => undefined);
    const error = describeSystemError(thrown);
    reportError(error, wantsJson(args));
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
