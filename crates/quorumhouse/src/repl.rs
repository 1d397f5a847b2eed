//! The interactive prompt of `client` and `local`: line editing and history
//! (rustyline), statements spanning lines until `;` or `\G`, and
//! clickhouse-client's ways out (`\q`, `exit`, `quit`, Ctrl-D).

use std::path::PathBuf;

use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Config, Editor};

/// What the prompt read.
pub enum Line {
    /// One or more complete statements (as typed, with their terminators).
    Statements(String),
    /// The user asked to leave.
    Quit,
}

/// History survives sessions in `~/.quorumhouse-client-history` (like
/// clickhouse-client's), or where `QUORUMHOUSE_HISTORY_FILE` says.
fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("QUORUMHOUSE_HISTORY_FILE") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".quorumhouse-client-history"))
}

pub struct Prompt {
    editor: Editor<(), DefaultHistory>,
    history: Option<PathBuf>,
}

impl Prompt {
    pub fn new() -> Result<Prompt, String> {
        let config = Config::builder()
            .max_history_size(10_000)
            .map_err(|e| e.to_string())?
            .auto_add_history(false)
            .build();
        let mut editor = Editor::with_config(config).map_err(|e| e.to_string())?;
        let history = history_path();
        if let Some(h) = &history {
            // A missing history file is the normal first run.
            let _ = editor.load_history(h);
        }
        Ok(Prompt { editor, history })
    }

    /// [`Prompt::new`] for a command: a failure is printed and becomes the
    /// exit status.
    pub fn open() -> Result<Prompt, std::process::ExitCode> {
        Prompt::new().map_err(|e| {
            crate::output::print_error(
                qh_types::ErrorCode::LOGICAL_ERROR,
                &format!("cannot open the terminal: {e}"),
            );
            std::process::ExitCode::from(1)
        })
    }

    /// Reads lines until a statement is complete. Ctrl-C drops what was typed
    /// so far; Ctrl-D on an empty prompt quits.
    pub fn read_statements(&mut self) -> Line {
        let mut buf = String::new();
        loop {
            let prompt = if buf.is_empty() { ":) " } else { ":-] " };
            match self.editor.readline(prompt) {
                Ok(line) => {
                    let t = line.trim();
                    if buf.is_empty() && matches!(t, "\\q" | "exit" | "quit" | "q" | "logout") {
                        return Line::Quit;
                    }
                    if buf.is_empty() && t.is_empty() {
                        continue;
                    }
                    if !buf.is_empty() {
                        buf.push('\n');
                    }
                    buf.push_str(&line);
                    if is_complete(t) {
                        // The whole multi-line statement is one history entry.
                        let _ = self.editor.add_history_entry(buf.as_str());
                        self.save_history();
                        return Line::Statements(buf);
                    }
                }
                Err(ReadlineError::Interrupted) => buf.clear(),
                Err(ReadlineError::Eof) if buf.is_empty() => return Line::Quit,
                Err(ReadlineError::Eof) => buf.clear(),
                Err(e) => {
                    eprintln!("cannot read the terminal: {e}");
                    return Line::Quit;
                }
            }
        }
    }

    fn save_history(&mut self) {
        if let Some(h) = &self.history {
            if let Err(e) = self.editor.save_history(h) {
                tracing::debug!(error = %e, file = %h.display(), "cannot save the history");
            }
        }
    }
}

/// A statement is complete at a line ending in `;` or `\G` (multi-line mode,
/// as clickhouse-client's `-m` which is the default here).
fn is_complete(trimmed_line: &str) -> bool {
    trimmed_line.ends_with(';') || trimmed_line.ends_with("\\G")
}

#[cfg(test)]
mod tests {
    use super::is_complete;

    #[test]
    fn statements_end_at_semicolon_or_backslash_g() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1 \\G"));
        assert!(!is_complete("SELECT"));
        assert!(!is_complete("WHERE a = ';' AND"));
    }
}
