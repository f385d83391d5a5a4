//! `swell completions SHELL`: the shell completion script, generated from the commands' own
//! definitions by clap_complete.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::Cli;

pub fn print(shell: Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "swell", &mut std::io::stdout());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(shell: Shell) -> String {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "swell", &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn bash_accepts_the_bash_script_and_it_completes_every_command() {
        let text = script(Shell::Bash);
        let file = std::env::temp_dir().join(format!("swell-completions-{}.bash", std::process::id()));
        std::fs::write(&file, &text).unwrap();
        let checked = std::process::Command::new("bash").arg("-n").arg(&file).output().expect("bash runs");
        std::fs::remove_file(&file).ok();
        assert!(checked.status.success(), "bash -n: {}", String::from_utf8_lossy(&checked.stderr));
        for command in Cli::command().get_subcommands().filter(|c| !c.is_hide_set()) {
            assert!(text.contains(command.get_name()), "no completion for {}", command.get_name());
        }
    }

    #[test]
    fn zsh_and_fish_scripts_name_the_commands() {
        for shell in [Shell::Zsh, Shell::Fish] {
            let text = script(shell);
            assert!(text.contains("swell") && text.contains("replay") && text.contains("set-oidc"), "{shell}: {text:.200}");
        }
    }

    /// Every command's `--help` (and every parent's) ends with an example of its use.
    #[test]
    fn every_command_help_has_an_example() {
        fn walk(cmd: &mut clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands_mut() {
                if sub.is_hide_set() || sub.get_name() == "help" {
                    continue;
                }
                let name = format!("{path} {}", sub.get_name());
                let help = sub.render_long_help().to_string();
                if !help.split_once("Example: ").is_some_and(|(_, example)| example.contains("swell ")) {
                    missing.push(name.clone());
                }
                walk(sub, &name, missing);
            }
        }
        let mut cli = Cli::command();
        cli.build();
        let mut missing = Vec::new();
        walk(&mut cli, "swell", &mut missing);
        assert!(missing.is_empty(), "no example in --help of: {missing:?}");
    }
}
