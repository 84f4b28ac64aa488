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

    /// Print a JSON document as the CLI does (two-space indentation, members in the CLI's
    /// order).
    pub fn print_json(&self, v: &Value) {
        let mut text = String::new();
        write_json(&mut text, v, 0);
        text.push('\n');
        self.show(&text);
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

/// The order the CLI prints members in (the user guide's examples); others follow by name.
const MEMBER_ORDER: &[&str] = &[
    "error_code",
    "data",
    "username",
    "role",
    "locked",
    "mfa",
    "strategy",
    "status",
    "cluster-coverage",
    "key-coverage",
    "matched_keys",
    "key",
    "key-reference",
    "key-info",
    "key-owners",
    "shared-users",
    "key-quorum-values",
    "manage-key-quorum-value",
    "use-key-quorum-value",
    "attributes",
    "key-type",
    "label",
    "id",
    "check-value",
    "class",
    "encrypt",
    "decrypt",
    "token",
    "always-sensitive",
    "derive",
    "destroyable",
    "extractable",
    "local",
    "modifiable",
    "never-extractable",
    "private",
    "sensitive",
    "sign",
    "trusted",
    "unwrap",
    "verify",
    "wrap",
    "wrap-with-trusted",
    "key-length-bytes",
    "total_key_count",
    "returned_key_count",
    "next_token",
    "message",
];

fn member_rank(name: &str) -> (usize, &str) {
    let rank = MEMBER_ORDER
        .iter()
        .position(|m| *m == name)
        .unwrap_or(MEMBER_ORDER.len());
    (rank, name)
}

/// Pretty-print `v` into `out` at `depth` (two spaces a level), objects in the CLI's order.
fn write_json(out: &mut String, v: &Value, depth: usize) {
    let pad = |d: usize| "  ".repeat(d);
    match v {
        Value::Object(m) if !m.is_empty() => {
            let mut members: Vec<(&String, &Value)> = m.iter().collect();
            members.sort_by(|a, b| member_rank(a.0).cmp(&member_rank(b.0)));
            out.push_str("{\n");
            for (i, (k, x)) in members.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push_str(": ");
                write_json(out, x, depth + 1);
                out.push_str(if i + 1 < members.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push('}');
        }
        Value::Array(a) if !a.is_empty() => {
            out.push_str("[\n");
            for (i, x) in a.iter().enumerate() {
                out.push_str(&pad(depth + 1));
                write_json(out, x, depth + 1);
                out.push_str(if i + 1 < a.len() { ",\n" } else { "\n" });
            }
            out.push_str(&pad(depth));
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_is_printed_in_the_clis_member_order() {
        let mut out = String::new();
        let v = json!({"data": {"username": "admin1", "role": "admin"}, "error_code": 0});
        write_json(&mut out, &v, 0);
        assert_eq!(
            out,
            "{\n  \"error_code\": 0,\n  \"data\": {\n    \"username\": \"admin1\",\n    \"role\": \"admin\"\n  }\n}"
        );
        let mut out = String::new();
        write_json(&mut out, &json!({"mfa": [], "x": {}}), 0);
        assert_eq!(out, "{\n  \"mfa\": [],\n  \"x\": {}\n}");
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(back, json!({"mfa": [], "x": {}}));
    }
}
