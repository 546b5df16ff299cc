//! Token query rewriting: never panics; rewriting is idempotent (library/
//! is never added twice); without the library rule the input is unchanged
//! up to empty pairs.
#![no_main]
use edge_mirror::scope::rewrite_token_params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let mut once = String::new();
    if rewrite_token_params(s, true, &mut once).is_err() {
        return;
    }
    let mut twice = String::new();
    rewrite_token_params(&once, true, &mut twice).expect("the rewritten query is valid");
    assert_eq!(once, twice);
    let mut plain = String::new();
    rewrite_token_params(s, false, &mut plain).expect("valid without library too");
    let nonempty: Vec<&str> = s.split('&').filter(|p| !p.is_empty()).collect();
    assert_eq!(plain, nonempty.join("&"));
});
