//! Message properties and selectors of a perf run: which headers each message carries
//! (`--property-cycle`, `--priority-cycle`) and, from them, which messages a subscriber with
//! a `--selector` must receive.
//!
//! The tool does not evaluate JMS selectors in general. It knows the exact set a selector
//! picks only for the form `NAME = 'VALUE'` where NAME has a `--property-cycle`: message
//! `seq` carries value `seq % k` of the cycle, so the subscriber must get exactly the
//! messages whose position in the cycle holds VALUE. Any other selector is refused rather
//! than guessed at, so a run's lost / "outside the selector" figures are always exact.

use super::PerfError;

/// Longest property cycle accepted (values per cycle), so that per-message lookups stay
/// small tables.
pub const MAX_CYCLE: usize = 1000;

/// `--property-cycle NAME=V1,V2,...`: message `seq` carries header NAME with value
/// `values[seq % values.len()]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyCycle {
    /// Header name.
    pub name: String,
    /// Values in cycle order (at least one).
    pub values: Vec<String>,
}

/// Headers the tool writes itself or STOMP reserves: a cycle may not replace them.
const RESERVED: &[&str] = &[
    "destination",
    "receipt",
    "content-length",
    "content-type",
    "transaction",
    "persistent",
    "priority",
    "AMQ_SCHEDULED_DELAY",
    "AMQ_SCHEDULED_TIME",
    super::tracker::HEADER,
];

/// Parses `NAME=V1,V2,...` (clap value parser).
pub fn parse_property_cycle(s: &str) -> Result<PropertyCycle, String> {
    let Some((name, values)) = s.split_once('=') else {
        return Err(format!("'{s}' is not NAME=V1,V2,..."));
    };
    let name = name.trim();
    if name.is_empty() || name.contains([':', '\n', '\r']) {
        return Err(format!("'{name}' is not a usable header name"));
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(name)) {
        return Err(format!(
            "header '{name}' is set by the tool itself (use --priority-cycle for priority)"
        ));
    }
    let values: Vec<String> = values.split(',').map(str::to_string).collect();
    if values
        .iter()
        .any(|v| v.is_empty() || v.contains(['\n', '\r']))
    {
        return Err(format!("'{s}': every value must be non-empty, on one line"));
    }
    if values.len() > MAX_CYCLE {
        return Err(format!("'{s}': at most {MAX_CYCLE} values"));
    }
    Ok(PropertyCycle {
        name: name.to_string(),
        values,
    })
}

/// Parses `--priority-cycle`: comma-separated priorities or ranges, e.g. `0-9` or `0,4,9`
/// (each 0 to 9, the JMS range). Message `seq` gets `cycle[seq % cycle.len()]`.
pub fn parse_priority_cycle(s: &str) -> Result<PriorityCycle, String> {
    let digit = |t: &str| match t.trim().parse::<u8>() {
        Ok(p) if p <= 9 => Ok(p),
        _ => Err(format!("'{t}' is not a priority 0 to 9")),
    };
    let mut out = Vec::new();
    for item in s.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (digit(a)?, digit(b)?);
                if a <= b {
                    out.extend(a..=b);
                } else {
                    out.extend((b..=a).rev());
                }
            }
            None => out.push(digit(item)?),
        }
    }
    Ok(PriorityCycle(out))
}

/// Priorities in cycle order (never empty once parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorityCycle(pub Vec<u8>);

impl PriorityCycle {
    /// The priority of message `seq`.
    pub fn at(&self, seq: u64) -> Option<u8> {
        let k = self.0.len() as u64;
        (k > 0).then(|| self.0.get((seq % k) as usize).copied())?
    }
}

/// Which of a run's messages (by sequence number within its producer) a subscriber must get.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expect {
    /// `None`: every message. Otherwise a message is wanted when any rule wants it.
    any_of: Option<Vec<Rule>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    wanted: Vec<bool>,
}

impl Expect {
    /// Every message.
    pub fn all() -> Expect {
        Expect::default()
    }

    /// Whether this subscriber takes every message.
    pub fn is_all(&self) -> bool {
        self.any_of.is_none()
    }

    /// Whether message `seq` is one this subscriber must receive.
    pub fn wants(&self, seq: u64) -> bool {
        match &self.any_of {
            None => true,
            Some(rules) => rules.iter().any(|r| {
                let k = r.wanted.len() as u64;
                k > 0 && r.wanted.get((seq % k) as usize) == Some(&true)
            }),
        }
    }

    /// What a group of competing consumers must receive between them: the union.
    pub fn union<'a>(each: impl IntoIterator<Item = &'a Expect>) -> Expect {
        let mut rules = Vec::new();
        for e in each {
            match &e.any_of {
                None => return Expect::all(),
                Some(r) => rules.extend(r.iter().cloned()),
            }
        }
        Expect {
            any_of: Some(rules),
        }
    }

    /// What a subscriber with `selector` (if any) must receive, given the run's cycles.
    pub fn for_selector(
        selector: Option<&str>,
        cycles: &[PropertyCycle],
    ) -> Result<Expect, PerfError> {
        let Some(selector) = selector else {
            return Ok(Expect::all());
        };
        let (name, value) = parse_equals(selector).ok_or_else(|| {
            PerfError::msg(format!(
                "selector \"{selector}\": the tool can only count what NAME = 'VALUE' selects \
                 (NAME given by --property-cycle)"
            ))
        })?;
        let cycle = cycles.iter().find(|c| c.name == name).ok_or_else(|| {
            PerfError::msg(format!(
                "selector \"{selector}\" names '{name}', which no --property-cycle sets: \
                 it would select nothing"
            ))
        })?;
        Ok(Expect {
            any_of: Some(vec![Rule {
                wanted: cycle.values.iter().map(|v| *v == value).collect(),
            }]),
        })
    }
}

/// `NAME = 'VALUE'` (spaces optional, `''` inside the literal is one quote) as (NAME, VALUE).
pub fn parse_equals(s: &str) -> Option<(String, String)> {
    let (name, rest) = s.split_once('=')?;
    let name = name.trim();
    let ident_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '-' | '.'));
    if !ident_ok {
        return None;
    }
    let lit = rest.trim().strip_prefix('\'')?.strip_suffix('\'')?;
    // Inside the literal a quote only appears doubled.
    if lit.replace("''", "").contains('\'') {
        return None;
    }
    Some((name.to_string(), lit.replace("''", "'")))
}

/// The `i`-th of `list`, cycling; `None` when the list is empty.
pub fn cycled<T>(list: &[T], i: usize) -> Option<&T> {
    (!list.is_empty()).then(|| list.get(i % list.len()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cycle(s: &str) -> PropertyCycle {
        parse_property_cycle(s).expect("valid cycle")
    }

    #[test]
    fn property_cycles_parse_and_refuse_reserved_or_empty() {
        assert_eq!(
            cycle("color=red,blue"),
            PropertyCycle {
                name: "color".into(),
                values: vec!["red".into(), "blue".into()]
            }
        );
        for bad in [
            "color",
            "=a",
            "color=",
            "color=a,,b",
            "priority=1",
            "destination=x",
        ] {
            assert!(parse_property_cycle(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn priority_cycles_accept_lists_and_ranges() {
        assert_eq!(
            parse_priority_cycle("0-9").map(|c| c.0),
            Ok((0..=9).collect())
        );
        assert_eq!(
            parse_priority_cycle("0,4,9").map(|c| c.0),
            Ok(vec![0, 4, 9])
        );
        assert_eq!(
            parse_priority_cycle("9-7,1").map(|c| c.0),
            Ok(vec![9, 8, 7, 1])
        );
        for bad in ["", "10", "0-10", "a", "1,,2"] {
            assert!(parse_priority_cycle(bad).is_err(), "{bad}");
        }
        let c = PriorityCycle(vec![0, 4, 9]);
        assert_eq!((c.at(0), c.at(4), c.at(8)), (Some(0), Some(4), Some(9)));
    }

    #[test]
    fn equality_selectors_parse_and_others_do_not() {
        assert_eq!(
            parse_equals("color = 'red'"),
            Some(("color".into(), "red".into()))
        );
        assert_eq!(
            parse_equals("name='it''s'"),
            Some(("name".into(), "it's".into()))
        );
        for bad in [
            "color",
            "color = red",
            "color = 'a' OR color = 'b'",
            "a b = 'x'",
            "color = 'it's'",
            "color > 'a'",
        ] {
            assert_eq!(parse_equals(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_expected_set_follows_the_cycle() {
        let cycles = [cycle("color=red,blue,red")];
        let red = Expect::for_selector(Some("color = 'red'"), &cycles).expect("red");
        let blue = Expect::for_selector(Some("color='blue'"), &cycles).expect("blue");
        let got: Vec<bool> = (0..6).map(|s| red.wants(s)).collect();
        assert_eq!(got, [true, false, true, true, false, true]);
        assert!(!blue.wants(0) && blue.wants(4));
        let both = Expect::union([&red, &blue]);
        assert!((0..6).all(|s| both.wants(s)));
        assert!(Expect::union([&red, &Expect::all()]).is_all());
        assert!(Expect::for_selector(None, &cycles).expect("none").is_all());
        assert!(Expect::for_selector(Some("size = 'x'"), &cycles).is_err());
        assert!(Expect::for_selector(Some("color IN ('red')"), &cycles).is_err());
        let none = Expect::for_selector(Some("color = 'green'"), &cycles).expect("green");
        assert!((0..6).all(|s| !none.wants(s)));
    }
}
