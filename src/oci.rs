//! OCI error bodies: `{"errors":[{"code":"...","message":"...","detail":...}]}`.
//!
//! The worker's entry writes them (src/edge.js, from the table of
//! `crate::messages`); [`error_body`] is the same body written here, for the
//! native tests and tools. [`json_escape`] is the planner's for the log line.

use crate::messages::Msg;
use crate::Put;

/// Appends `s` as the inside of a JSON string: `"`, `\` and control
/// characters escaped, everything else (UTF-8 included) copied in runs.
pub fn json_escape(s: &str, out: &mut String) {
    let mut run = 0;
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if b == b'"' || b == b'\\' || b < 0x20 {
            out.push_str(s.get(run..i).unwrap_or(""));
            out.put(b'\\');
            match b {
                b'"' | b'\\' => out.put(b),
                b'\n' => out.put(b'n'),
                _ => {
                    out.push_str("u00");
                    out.put(crate::hex_digit(b >> 4));
                    out.put(crate::hex_digit(b));
                }
            }
            run = i + 1;
        }
    }
    out.push_str(s.get(run..).unwrap_or(""));
}

/// The error body for `msg`, with `subject` (a host name or similar, quoted
/// after the message when not empty): what the entry writes for a local
/// answer.
pub fn error_body(msg: Msg, subject: &str) -> String {
    let mut out = String::with_capacity(64 + msg.text().len() + subject.len());
    out.push_str("{\"errors\":[{\"code\":\"");
    out.push_str(msg.code().as_str());
    out.push_str("\",\"message\":\"");
    json_escape(msg.text(), &mut out);
    if !subject.is_empty() {
        out.push_str(": ");
        json_escape(subject, &mut out);
    }
    out.push_str("\",\"detail\":null}]}");
    out
}
