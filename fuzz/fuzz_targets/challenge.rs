//! WWW-Authenticate: parse never panics; rewrite -> parse keeps every
//! parameter except the Bearer realm, which becomes the mirror's, and the
//! Bearer scope, which goes through the mapper; no rewritten line holds a
//! line break (the entry splits on them).
#![no_main]
use edge_mirror::challenge::{parse, rewrite};
use libfuzzer_sys::fuzz_target;

const REALM: &str = "https://m.example/token";

fn mapper(v: &str, out: &mut String) {
    out.push_str("mapped:");
    out.push_str(v);
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(first) = parse(s) else { return };
    let Ok(text) = rewrite(s, REALM, &mapper) else { return };
    let lines: Vec<&str> = text.split('\n').collect();
    assert_eq!(lines.len(), first.len());
    for (line, a) in lines.iter().zip(first.iter()) {
        assert!(!line.contains('\r'));
        let again = parse(line).expect("the rewritten challenge parses");
        assert_eq!(again.len(), 1, "one challenge per line: {line:?}");
        let b = &again[0];
        assert_eq!(a.scheme, b.scheme);
        assert_eq!(a.token68, b.token68);
        assert_eq!(a.params.len(), b.params.len());
        for ((an, av), (bn, bv)) in a.params.iter().zip(b.params.iter()) {
            assert_eq!(an, bn);
            if a.is_bearer() && an.eq_ignore_ascii_case("realm") {
                assert_eq!(bv, REALM);
            } else if a.is_bearer() && an.eq_ignore_ascii_case("scope") {
                assert_eq!(bv.as_ref(), format!("mapped:{av}"));
            } else {
                assert_eq!(av, bv);
            }
        }
    }
});
