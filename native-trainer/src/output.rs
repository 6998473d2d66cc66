//! What the CLI writes. Results go to stdout with their errors returned: a full disk
//! (`> /dev/full`) is a one-line error and a closed pipe (`| head -c1`) ends the process quietly
//! (main.rs), where `println!` would panic. Reports go to stderr on one line each, with what came
//! from the input (file names, shard bytes, parser messages) made printable.

use std::fmt::Display;
use std::io::Write;

use anyhow::Result;

/// A failed write to stdout: main.rs ends the process quietly when its reader has gone (only
/// stdout's: a broken pipe elsewhere, such as a training peer's socket, is an error).
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("writing to stdout")
    }
}

impl std::error::Error for StdoutError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Writes `text` and a newline to stdout, flushed.
pub fn print(text: impl Display) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}").and_then(|()| out.flush()).map_err(|e| StdoutError(e).into())
}

/// Whether `error` is a write to a closed stdout (`clip-burn ... | head -1`).
pub fn is_closed_stdout(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.downcast_ref::<StdoutError>().is_some_and(|s| s.0.kind() == std::io::ErrorKind::BrokenPipe))
}

/// The longest report line about one input (a skipped sample's key and reason).
const MAX_REPORT_CHARS: usize = 300;

/// `text` on one line: line breaks become spaces, other control characters escapes.
pub fn one_line(text: &str) -> String {
    let joined = text.split(['\n', '\r']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
    joined.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// `text` from the input, on one line and cut to a readable length.
pub fn sanitised(text: &str) -> String {
    let line = one_line(text);
    match line.char_indices().nth(MAX_REPORT_CHARS) {
        Some((cut, _)) => format!("{}...", &line[..cut]),
        None => line,
    }
}

/// Inputs a command skipped (samples, rows, images): counted, and reported on one sanitised line.
pub struct Skipped {
    what: String,
    unit: &'static str,
    reasons: Vec<String>,
}

impl Skipped {
    pub fn new(what: impl Into<String>, unit: &'static str) -> Self {
        Self { what: what.into(), unit, reasons: Vec::new() }
    }

    pub fn add(&mut self, reason: String) {
        self.reasons.push(reason);
    }

    pub fn count(&self) -> usize {
        self.reasons.len()
    }

    /// One line on stderr when anything was skipped: the count and the first reasons.
    pub fn report(&self) {
        if let Some(line) = self.line() {
            eprintln!("{line}");
        }
    }

    fn line(&self) -> Option<String> {
        const SHOWN: usize = 3;
        if self.reasons.is_empty() {
            return None;
        }
        let mut shown: Vec<String> = self.reasons.iter().take(SHOWN).map(|r| sanitised(r)).collect();
        if self.reasons.len() > SHOWN {
            shown.push(format!("and {} more", self.reasons.len() - SHOWN));
        }
        Some(format!("{}: skipped {} {}: {}", sanitised(&self.what), self.reasons.len(), self.unit, shown.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_one_printable_line() {
        assert_eq!(one_line("a\n  b\r\nc\u{1b}[31m\0"), "a b c\\u{1b}[31m\\u{0}");
        let long = "x".repeat(1000);
        assert_eq!(sanitised(&long).chars().count(), MAX_REPORT_CHARS + 3);
        assert_eq!(sanitised("caf\u{e9}"), "caf\u{e9}");
    }

    #[test]
    fn only_stdout_closing_is_quiet() {
        let closed = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        let stdout: anyhow::Error = StdoutError(closed()).into();
        assert_eq!(format!("{:#}", stdout), "writing to stdout: broken pipe");
        assert!(is_closed_stdout(&stdout.context("tokenize")));
        // A peer's socket closing is an error like any other.
        assert!(!is_closed_stdout(&anyhow::Error::from(closed()).context("sending to rank 1")));
        assert!(!is_closed_stdout(&StdoutError(std::io::Error::from(std::io::ErrorKind::StorageFull)).into()));
    }

    #[test]
    fn a_skip_report_counts_and_shows_the_first_reasons() {
        let mut skipped = Skipped::new("t.csv", "rows");
        assert_eq!(skipped.line(), None);
        for i in 0..5 {
            skipped.add(format!("row {i}: bad\nbytes \u{7}"));
        }
        assert_eq!(skipped.count(), 5);
        assert_eq!(skipped.line().unwrap(), "t.csv: skipped 5 rows: row 0: bad bytes \\u{7}; row 1: bad bytes \\u{7}; row 2: bad bytes \\u{7}; and 2 more");
    }
}
