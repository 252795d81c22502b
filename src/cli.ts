#!/usr/bin/env node
import { Command, CommanderError, Option } from 'commander';
import { list } from './commands/list.js';
import { DdiffError, errorMessage } from './errors.js';

const engineOption = () =>
  new Option('--engine <name>', 'container engine for image references (env DDIFF_ENGINE)').choices(['docker', 'podman']);

function out(text: string): void {
  if (text) process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

export function buildProgram(): Command {
  const program = new Command('ddiff')
    .description('Ship only the image layers an offline host lacks, and rebuild the image there.')
    .version('0.1.0', '-v, --version')
    .showHelpAfterError('(run ddiff --help for usage)')
    .exitOverride();

  program
    .command('list')
    .description('list the images, platforms and layers of archives, directories or local images')
    .argument('<input...>', 'archive file, layout directory, - (stdin), or image reference')
    .option('--json', 'print JSON (full sha256: digests)')
    .addOption(engineOption())
    .action(async (inputs: string[], options: { json?: boolean; engine?: string }) => {
      await list(inputs, options, out);
    });

  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    const prefix = process.env.NO_COLOR || !process.stderr.isTTY ? 'ddiff: error: ' : '\u001b[31mddiff: error:\u001b[0m ';
    process.stderr.write(`${prefix}${errorMessage(error).split('\n')[0]}\n`);
    if (process.env.DDIFF_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return error instanceof DdiffError ? error.exitCode : 1;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
