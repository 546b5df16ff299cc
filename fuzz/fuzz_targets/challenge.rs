//! WWW-Authenticate: parse never panics; rewrite -> parse keeps every
//! parameter except the Bearer realm, which becomes the mirror's.
#![no_main]
use edge_mirror::challenge::{parse, rewrite};
use libfuzzer_sys::fuzz_target;

const REALM: &str = "https://m.example/token";

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let Ok(first) = parse(s) else { return };
    let Ok(lines) = rewrite(s, REALM) else { return };
    assert_eq!(lines.len(), first.len());
    for (line, a) in lines.iter().zip(first.iter()) {
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
            } else {
                assert_eq!(av, bv);
            }
        }
    }
});
