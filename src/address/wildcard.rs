//! Artemis wildcard syntax over `.`-separated words: `#` matches zero or more words, `*`
//! exactly one. Used for wildcard subscriptions, address-settings and security-settings matches.

/// True when the address name contains a wildcard word, i.e. it names a set of addresses.
pub fn is_wildcard(name: &str) -> bool {
    name.split('.').any(|w| w == "#" || w == "*")
}

/// Whether `pattern` matches `address` word by word.
///
/// Every send compares its address with every wildcard subscription, so a client's pattern
/// must not be able to make this expensive: a recursive matcher tries every way of sharing
/// the words among the `#`s, which is exponential (`#.#.…#.z` against a long address never
/// finishes). This is the glob algorithm with one backtrack point: on a mismatch only the
/// latest `#` absorbs one more word, because a later `#` can absorb anything an earlier one
/// could have. Runs of `#` collapse by themselves (each one just moves the backtrack point).
/// At most O(p·a) word comparisons, O(p + a) in the usual cases, and no allocation.
pub fn matches(pattern: &str, address: &str) -> bool {
    let mut p = pattern.split('.');
    let mut a = address.split('.');
    // Where to resume after the latest `#`: the pattern after it, and the address words it
    // has not absorbed yet.
    let mut resume = None;
    loop {
        let pw = p.next();
        if pw == Some("#") {
            resume = Some((p.clone(), a.clone()));
            continue;
        }
        match (pw, a.next()) {
            (None, None) => return true,
            (Some(w), Some(x)) if w == "*" || w == x => continue,
            _ => {}
        }
        let Some((after_hash, absorbed)) = resume.as_mut() else {
            return false;
        };
        if absorbed.next().is_none() {
            return false;
        }
        p = after_hash.clone();
        a = absorbed.clone();
    }
}

/// Orders patterns so that the most specific one sorts last: more literal words win, then
/// `*` beats `#`. Address settings are merged in that order so specific entries override.
pub fn specificity(pattern: &str) -> (usize, usize, usize) {
    let words: Vec<&str> = pattern.split('.').collect();
    let literal = words.iter().filter(|w| **w != "#" && **w != "*").count();
    let single = words.iter().filter(|w| **w == "*").count();
    (literal, single, words.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The previous, obviously correct but exponential matcher: the oracle for small inputs.
    fn oracle(pattern: &str, address: &str) -> bool {
        fn words(p: &[&str], a: &[&str]) -> bool {
            match p.split_first() {
                None => a.is_empty(),
                Some((&"#", rest)) => (0..=a.len()).any(|skip| words(rest, &a[skip..])),
                Some((&"*", rest)) => !a.is_empty() && words(rest, &a[1..]),
                Some((word, rest)) => a.first() == Some(word) && words(rest, &a[1..]),
            }
        }
        let p: Vec<&str> = pattern.split('.').collect();
        let a: Vec<&str> = address.split('.').collect();
        words(&p, &a)
    }

    fn word(wild: bool) -> BoxedStrategy<String> {
        let literal = prop_oneof![Just("a"), Just("b"), Just(""), Just("ab")];
        if wild {
            prop_oneof![literal, Just("#"), Just("*")]
                .prop_map(str::to_string)
                .boxed()
        } else {
            literal.prop_map(str::to_string).boxed()
        }
    }

    fn name(wild: bool) -> impl Strategy<Value = String> {
        proptest::collection::vec(word(wild), 1..8).prop_map(|w| w.join("."))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn agrees_with_the_recursive_matcher(pattern in name(true), address in name(false)) {
            prop_assert_eq!(matches(&pattern, &address), oracle(&pattern, &address));
        }

        #[test]
        fn agrees_on_patterns_matched_against_patterns(pattern in name(true), address in name(true)) {
            prop_assert_eq!(matches(&pattern, &address), oracle(&pattern, &address));
        }
    }

    #[test]
    fn many_hashes_against_a_long_address_is_quick_to_decide() {
        let pattern = format!("{}z", "#.".repeat(20));
        let miss = vec!["w"; 40].join(".");
        let hit = format!("{miss}.z");
        // Exponential before: C(59, 19) ways to share 40 words among 20 `#`s.
        assert!(!matches(&pattern, &miss));
        assert!(matches(&pattern, &hit));
        assert!(matches(&pattern, "z"));
        assert!(!matches(
            &format!("{}a.b", "#.".repeat(20)),
            "a.".repeat(63).trim_end_matches('.')
        ));
    }

    #[test]
    fn runs_of_hashes_behave_as_one() {
        assert!(matches("a.#.#.b", "a.b"));
        assert!(matches("a.#.#.b", "a.x.y.b"));
        assert!(matches("#.#", "a"));
        assert!(!matches("a.#.#.b", "a.x.y.c"));
        assert!(matches("#.*.#", "a"));
        assert!(!matches("#.*.*.#", "a"));
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        assert!(matches("#", "a"));
        assert!(matches("#", "a.b.c"));
        assert!(matches("news.#", "news"));
        assert!(matches("news.#", "news.europe.sport"));
        assert!(matches("news.#.sport", "news.europe.sport"));
        assert!(matches("news.#.sport", "news.sport"));
        assert!(!matches("news.#", "sport.news"));
    }

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(matches("news.*", "news.europe"));
        assert!(!matches("news.*", "news"));
        assert!(!matches("news.*", "news.europe.sport"));
        assert!(matches("*.europe", "news.europe"));
    }

    #[test]
    fn literal_words_must_be_equal() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.c"));
        assert!(!is_wildcard("a.b"));
        assert!(is_wildcard("a.*"));
        assert!(!is_wildcard("a#b"));
    }

    #[test]
    fn more_literal_words_is_more_specific() {
        assert!(specificity("news.europe") > specificity("news.*"));
        assert!(specificity("news.*") > specificity("news.#"));
        assert!(specificity("news.#") > specificity("#"));
    }
}
