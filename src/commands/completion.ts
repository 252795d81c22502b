import { UsageError } from '../errors.js';
import type { Reporter } from './report.js';

/** A command as completion needs it: its name, what it does, and its option flags (`-o`, `--output` …). */
export interface CompletionCommand {
  name: string;
  description: string;
  flags: string[];
}

function bash(commands: CompletionCommand[]): string {
  const cases = commands.map((c) => `    ${c.name}) opts='${c.flags.join(' ')}' ;;`).join('\n');
  return `# ddiff completion for bash: source <(ddiff completion bash)
_ddiff() {
  local cur=\${COMP_WORDS[COMP_CWORD]} opts=''
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W '${commands.map((c) => c.name).join(' ')} --help --version' -- "$cur"))
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}
complete -o default -o filenames -F _ddiff ddiff
`;
}

function zsh(commands: CompletionCommand[]): string {
  // zsh runs the bash function through its own bashcompinit: one definition to keep right.
  return `#compdef ddiff
# ddiff completion for zsh: source <(ddiff completion zsh)
autoload -U +X bashcompinit && bashcompinit
${bash(commands).split('\n').slice(1).join('\n')}`;
}

function fish(commands: CompletionCommand[]): string {
  const quote = (text: string) => `'${text.replace(/[\\']/g, '\\$&')}'`;
  const lines = ['# ddiff completion for fish: ddiff completion fish | source', 'complete -c ddiff -f'];
  for (const c of commands) {
    lines.push(`complete -c ddiff -n __fish_use_subcommand -a ${c.name} -d ${quote(c.description)}`);
    for (const flag of c.flags) {
      const option = flag.startsWith('--') ? `-l ${flag.slice(2)}` : `-s ${flag.slice(1)}`;
      lines.push(`complete -c ddiff -n '__fish_seen_subcommand_from ${c.name}' ${option} -F`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const SHELLS = { bash, zsh, fish } as const;

/** `ddiff completion bash|zsh|fish`: a completion script for the shell, on stdout. */
export function completion(shell: string, commands: CompletionCommand[], report: Reporter): void {
  if (!Object.hasOwn(SHELLS, shell)) throw new UsageError(`completion: unknown shell '${shell}' (expected bash, zsh or fish)`);
  report.out(SHELLS[shell as keyof typeof SHELLS](commands));
}
