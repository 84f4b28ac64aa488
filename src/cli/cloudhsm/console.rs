//! Standard input and output of the CloudHSM CLI: command lines, the `aws-cloudhsm >` prompt,
//! password prompts (not echoed on a terminal) and the JSON it prints.

use serde_json::Value;
use std::io::{BufRead, IsTerminal, StdinLock, Write};

/// The interactive prompt.
pub const PROMPT: &str = "aws-cloudhsm > ";

/// Lines from standard input, shared by commands and password prompts.
pub struct Console {
    input: StdinLock<'static>,
}

impl Console {
    /// Standard input.
    pub fn stdin() -> Self {
        Console {
            input: std::io::stdin().lock(),
        }
    }

    /// The next line without its line ending, or `None` at end of input.
    pub fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
        }
    }

    /// Print `text` without a line ending and flush.
    pub fn show(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    /// Print a JSON document as the CLI does (two-space indentation).
    pub fn print_json(&self, v: &Value) {
        let text = serde_json::to_string_pretty(v).unwrap_or_default();
        self.show(&format!("{text}\n"));
    }

    /// Ask for a password with `label` (`Enter password:`); on a terminal it is not echoed.
    ///
    /// # Errors
    ///
    /// End of input before a password.
    pub fn password(&mut self, label: &str) -> Result<String, String> {
        self.show(&format!("{label}\n"));
        let _quiet = Quiet::on_terminal();
        self.read_line()
            .ok_or_else(|| "No password was given (end of input)".to_string())
    }

    /// Ask for a new password twice (`Enter password:`, `Confirm password:`).
    ///
    /// # Errors
    ///
    /// End of input, or two different passwords.
    pub fn new_password(&mut self) -> Result<String, String> {
        let first = self.password("Enter password:")?;
        let second = self.password("Confirm password:")?;
        if first == second {
            Ok(first)
        } else {
            // The CLI's own wording for a mismatch is not in the user guide.
            Err("The passwords do not match".to_string())
        }
    }
}

/// Terminal echo switched off while it lives (when standard input is a terminal).
struct Quiet {
    saved: Option<rustix::termios::Termios>,
}

impl Quiet {
    fn on_terminal() -> Self {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Quiet { saved: None };
        }
        let Ok(saved) = rustix::termios::tcgetattr(&stdin) else {
            return Quiet { saved: None };
        };
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        Quiet { saved: Some(saved) }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let stdin = std::io::stdin();
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
            let _ = std::io::stdout().write_all(b"\n");
        }
    }
}
