//! Artemis wildcard syntax over `.`-separated words: `#` matches zero or more words, `*`
//! exactly one. Used both for wildcard subscriptions and for address-settings matches.

/// True when the address name contains a wildcard word, i.e. it names a set of addresses.
pub fn is_wildcard(name: &str) -> bool {
    name.split('.').any(|w| w == "#" || w == "*")
}

/// Whether `pattern` matches `address` word by word.
pub fn matches(pattern: &str, address: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let a: Vec<&str> = address.split('.').collect();
    match_words(&p, &a)
}

fn match_words(p: &[&str], a: &[&str]) -> bool {
    match p.split_first() {
        None => a.is_empty(),
        Some((&"#", rest)) => (0..=a.len()).any(|skip| match_words(rest, &a[skip..])),
        Some((&"*", rest)) => !a.is_empty() && match_words(rest, &a[1..]),
        Some((word, rest)) => a.first() == Some(word) && match_words(rest, &a[1..]),
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
