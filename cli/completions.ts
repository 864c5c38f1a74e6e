/**
 * `completions bash|zsh|fish`: shell completion scripts generated from the
 * command tree (commands, subcommands and their flags), for the installed
 * `wfe-containerd` command.
 *
 * @module
 */

import type { Command } from "@commander-js/extra-typings";
import { CliError, examples, out, PROGRAM } from "./common.ts";

// deno-lint-ignore no-explicit-any
type AnyCommand = Command<any, any, any>;

interface Node {
  path: string[];
  command: AnyCommand;
}

function walk(command: AnyCommand, path: string[] = []): Node[] {
  const nodes: Node[] = [{ path, command }];
  for (const sub of command.commands as AnyCommand[]) {
    if (sub.name() === "help") continue;
    nodes.push(...walk(sub, [...path, sub.name()]));
  }
  return nodes;
}

function flagsOf(command: AnyCommand): string[] {
  const flags: string[] = [];
  for (const option of command.options) {
    if (option.long) flags.push(option.long);
    if (option.short) flags.push(option.short);
  }
  return [...flags, "--help"];
}

function subcommandsOf(command: AnyCommand): AnyCommand[] {
  return (command.commands as AnyCommand[]).filter((c) => c.name() !== "help");
}

const FN = PROGRAM.replace(/[^A-Za-z0-9]/g, "_");

/** A bash completion script (also used by zsh through bashcompinit). */
export function bashScript(program: AnyCommand): string {
  const nodes = walk(program);
  const globals = flagsOf(program).filter((f) => f !== "--help");
  const subs = nodes.map(({ path, command }) =>
    `    "${path.join(" ")}") echo "${subcommandsOf(command).map((c) => c.name()).join(" ")}" ;;`
  );
  const opts = nodes.map(({ path, command }) =>
    `    "${path.join(" ")}") echo "${flagsOf(command).join(" ")}" ;;`
  );
  return `# bash completion for ${PROGRAM}; load with: source <(${PROGRAM} completions bash)
_${FN}_subcommands() {
  case "$1" in
${subs.join("\n")}
  esac
}
_${FN}_flags() {
  case "$1" in
${opts.join("\n")}
  esac
}
_${FN}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" path="" word subs
  for word in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    subs=" $(_${FN}_subcommands "$path") "
    if [[ "$subs" == *" $word "* ]]; then path="\${path:+$path }$word"; fi
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_${FN}_flags "$path") ${globals.join(" ")}" -- "$cur"))
  else
    subs="$(_${FN}_subcommands "$path")"
    if [[ -n "$subs" ]]; then
      COMPREPLY=($(compgen -W "$subs" -- "$cur"))
    else
      COMPREPLY=($(compgen -f -- "$cur"))
    fi
  fi
}
complete -o filenames -F _${FN} ${PROGRAM}
`;
}

function fishQuote(text: string): string {
  return `'${text.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** A fish completion script. */
export function fishScript(program: AnyCommand): string {
  const lines = [
    `# fish completion for ${PROGRAM}; load with: ${PROGRAM} completions fish | source`,
  ];
  const top = subcommandsOf(program).map((c) => c.name());
  for (const option of program.options) {
    const parts = [`complete -c ${PROGRAM}`];
    if (option.long) parts.push(`-l ${option.long.slice(2)}`);
    if (option.short) parts.push(`-s ${option.short.slice(1)}`);
    if (option.required || option.optional) parts.push("-r");
    parts.push(`-d ${fishQuote(option.description)}`);
    lines.push(parts.join(" "));
  }
  for (const { path, command } of walk(program)) {
    if (path.length === 0) continue;
    const parent = path.slice(0, -1);
    const condition = parent.length === 0
      ? `not __fish_seen_subcommand_from ${top.join(" ")}`
      : `__fish_seen_subcommand_from ${
        parent[parent.length - 1]
      }; and not __fish_seen_subcommand_from ${
        subcommandsOf(command.parent as AnyCommand).map((c) => c.name()).join(" ")
      }`;
    lines.push(
      `complete -c ${PROGRAM} -f -n ${fishQuote(condition)} -a ${path[path.length - 1]} ` +
        `-d ${fishQuote(command.summary() || command.description().split("\n")[0])}`,
    );
    for (const option of command.options) {
      const parts = [
        `complete -c ${PROGRAM} -n ${
          fishQuote(`__fish_seen_subcommand_from ${path[path.length - 1]}`)
        }`,
      ];
      if (option.long) parts.push(`-l ${option.long.slice(2)}`);
      if (option.short) parts.push(`-s ${option.short.slice(1)}`);
      if (option.argChoices) parts.push(`-xa ${fishQuote(option.argChoices.join(" "))}`);
      else if (option.required || option.optional) parts.push("-r");
      parts.push(`-d ${fishQuote(option.description)}`);
      lines.push(parts.join(" "));
    }
  }
  return lines.join("\n") + "\n";
}

/** A zsh completion script (the bash one through bashcompinit). */
export function zshScript(program: AnyCommand): string {
  return `# zsh completion for ${PROGRAM}; load with: source <(${PROGRAM} completions zsh)
autoload -U +X bashcompinit && bashcompinit
${bashScript(program).split("\n").slice(1).join("\n")}`;
}

/** Registers `completions` on the program. */
export function registerCompletions(program: Command<[], Record<string, unknown>>): void {
  program
    .command("completions")
    .summary("print a shell completion script (bash, zsh or fish)")
    .description(
      `Print a completion script for the installed ${PROGRAM} command (commands, subcommands and\n` +
        "flags; file names where a command takes no subcommand).",
    )
    .argument("<shell>", "bash, zsh or fish")
    .addHelpText(
      "after",
      examples(
        `source <(${PROGRAM} completions bash)            # in ~/.bashrc`,
        `source <(${PROGRAM} completions zsh)             # in ~/.zshrc`,
        `${PROGRAM} completions fish > ~/.config/fish/completions/${PROGRAM}.fish`,
      ),
    )
    .action((shell) => {
      const root = program as unknown as AnyCommand;
      if (shell === "bash") out(bashScript(root));
      else if (shell === "zsh") out(zshScript(root));
      else if (shell === "fish") out(fishScript(root));
      else throw new CliError(`completions '${shell}': expected bash, zsh or fish`);
    });
}
