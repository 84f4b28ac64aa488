//! A CloudHSM CLI-compatible command line over the simulated cluster: the grammar, JSON
//! envelope and modes of the AWS CloudHSM CLI (Client SDK 5), answered by the simulator's
//! `/_sim/clusters/{id}/cli/…` routes.
//!
//! - Single command mode: `cloudhsm-cli <command>` (or `cks-sim cloudhsm-cli <command>`),
//!   with the user from `CLOUDHSM_ROLE` and `CLOUDHSM_PIN` (`<user>:<password>`).
//! - Interactive mode: `cloudhsm-cli interactive`, commands typed at `aws-cloudhsm >`, a
//!   `login` kept until `logout`, `quit` or the end of input.
//!
//! Every command prints `{"error_code": 0, "data": …}`, or `{"error_code": 1, "data":
//! "<message>"}` on failure. Passwords need not be on the command line: without
//! `--password` the CLI prompts for them (not echoed on a terminal).
//!
//! - [`grammar`]: the commands and options;
//! - [`console`]: standard input and output, prompts;
//! - [`session`]: who is logged in, which cluster, and each command's call to the simulator.

pub mod console;
pub mod grammar;
pub mod session;

use clap::Parser;
use console::{Console, PROMPT};
use grammar::{Command, Invocation};
use serde_json::{Value, json};
use session::Session;
use std::ffi::OsString;
use std::process::ExitCode;

/// The envelope of a command's result.
pub fn envelope(result: &Result<Value, String>) -> Value {
    match result {
        Ok(data) => json!({"error_code": 0, "data": data}),
        // The CLI's error envelope: AWS documents the success form; the error form
        // (`error_code` 1 and the message as `data`) is the simulator's reading of it.
        Err(message) => json!({"error_code": 1, "data": message}),
    }
}

/// Run the CLI with `args` (the first is the program name). Returns the process exit code:
/// success, or failure when a single command failed.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let inv = match Invocation::try_parse_from(args) {
        Ok(inv) => inv,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let mut session = match Session::new(&inv.endpoint, inv.cluster_id.clone()) {
        Ok(s) => s,
        Err(e) => {
            Console::stdin().print_json(&envelope(&Err(e)));
            return ExitCode::FAILURE;
        }
    };
    match inv.cmd {
        Command::Interactive => {
            interactive(&mut session);
            ExitCode::SUCCESS
        }
        cmd => {
            let result = session.execute(None, cmd);
            session.console.print_json(&envelope(&result));
            if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// The `aws-cloudhsm >` loop, until `quit` or the end of input; a user still logged in is
/// logged out at the end.
fn interactive(session: &mut Session) {
    session.interactive = true;
    loop {
        session.console.show(PROMPT);
        let Some(line) = session.console.read_line() else {
            session.console.show("\n");
            break;
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "quit" || line == "exit" {
            break;
        }
        let Some(words) = shlex::split(line) else {
            let r = Err("The command line has an unterminated quote".to_string());
            session.console.print_json(&envelope(&r));
            continue;
        };
        let argv = std::iter::once("cloudhsm-cli".to_string()).chain(words);
        let inv = match Invocation::try_parse_from(argv) {
            Ok(inv) => inv,
            Err(e) => {
                session.console.show(&format!("{e}"));
                continue;
            }
        };
        match inv.cmd {
            Command::Quit => break,
            cmd => {
                let result = session.execute(inv.cluster_id, cmd);
                session.console.print_json(&envelope(&result));
            }
        }
    }
    session.logout_quietly();
}

/// Whether this process was invoked through a link named `cloudhsm-cli`.
pub fn invoked_as_cloudhsm_cli() -> bool {
    std::env::args_os()
        .next()
        .map(std::path::PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_os_string()))
        .is_some_and(|n| n == "cloudhsm-cli")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_carry_error_code_and_data() {
        let ok = envelope(&Ok(json!({"username": "alice"})));
        assert_eq!(ok["error_code"], 0);
        assert_eq!(ok["data"]["username"], "alice");
        let err = envelope(&Err("no".into()));
        assert_eq!(err["error_code"], 1);
        assert_eq!(err["data"], "no");
    }

    #[test]
    fn the_grammar_takes_the_guides_commands() {
        let p = |s: &str| {
            Invocation::try_parse_from(
                std::iter::once("cloudhsm-cli".to_string()).chain(shlex::split(s).unwrap()),
            )
        };
        assert!(p("login --username kmsuser --role crypto-user").is_ok());
        assert!(p("login --username admin --role officer").is_err());
        assert!(p("user change-password --username kmsuser --role crypto-user").is_ok());
        let inv =
            p("key list --filter attr.label=\"my key\" attr.class=secret-key --verbose").unwrap();
        match inv.cmd {
            Command::Key(grammar::KeyCmd::List {
                filter,
                verbose,
                max_items,
                ..
            }) => {
                assert_eq!(filter, vec!["attr.label=my key", "attr.class=secret-key"]);
                assert!(verbose);
                assert_eq!(max_items, 10);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(p("key delete").is_err(), "key delete needs --filter");
        assert!(p("key generate-symmetric aes --label x --key-length-bytes 32").is_ok());
        assert!(
            p("key share --filter key-reference=0x1 --username bob --role crypto-user").is_ok()
        );
        assert!(p("cluster activate").is_ok());
    }
}
