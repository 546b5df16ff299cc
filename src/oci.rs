//! OCI error bodies: `{"errors":[{"code":"...","message":"...","detail":...}]}`.
//!
//! Every answer the mirror makes itself is one of these, so registry clients
//! print the message. Codes are the distribution spec's, plus `UNAVAILABLE`
//! (distribution's own code for an upstream that cannot be reached).
//! Messages are static text; the few that name a host or an upstream get it
//! appended after checks, and JSON-escaped here.

use crate::Put;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    NameInvalid,
    NameUnknown,
    DigestInvalid,
    TagInvalid,
    Unsupported,
    Unauthorized,
    Denied,
    Unavailable,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::TagInvalid => "TAG_INVALID",
            Code::Unsupported => "UNSUPPORTED",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unavailable => "UNAVAILABLE",
        }
    }
}

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

/// The error body for `code`, with `message` and `subject` (a host name or
/// similar, quoted after the message when not empty).
pub fn error_body(code: Code, message: &str, subject: &str) -> String {
    let mut out = String::with_capacity(64 + message.len() + subject.len());
    out.push_str("{\"errors\":[{\"code\":\"");
    out.push_str(code.as_str());
    out.push_str("\",\"message\":\"");
    json_escape(message, &mut out);
    if !subject.is_empty() {
        out.push_str(": ");
        json_escape(subject, &mut out);
    }
    out.push_str("\",\"detail\":null}]}");
    out
}
