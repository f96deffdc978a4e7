//! Who may be matched with whom, and which waiting user a newcomer gets (DESIGN.md §5).
//!
//! Pure: the stores load the facts (tickets, blocks, last partners) and ask these functions. The
//! Redis store's Lua script applies the same rules inside Redis; the shared store tests hold the
//! two to the same behaviour.

use std::collections::HashSet;

use anonchat_protocol::token::Gender;

use anonchat_protocol::rendezvous::Want;

/// Waiting users who joined in the same bucket of this many milliseconds (fixed boundaries:
/// `joined_ms / TIE_WINDOW_MS`) count as having waited equally long; among them, more shared
/// interests win.
pub const TIE_WINDOW_MS: u64 = 1000;

/// One side of a possible match.
#[derive(Debug, Clone)]
pub struct Seat<'a> {
    pub pseudonym: &'a str,
    pub gender: Gender,
    pub want: Want,
    pub interests: &'a [String],
    /// Pseudonym of this user's previous partner, if any (no immediate rematch).
    pub last_partner: Option<&'a str>,
    /// Pseudonyms this user has blocked.
    pub blocked: &'a HashSet<String>,
}

/// Whether `want` accepts someone of `gender`. An undisclosed gender is accepted only by `any`.
pub fn accepts(want: Want, gender: Gender) -> bool {
    matches!(
        (want, gender),
        (Want::Any, _) | (Want::M, Gender::Male) | (Want::F, Gender::Female)
    )
}

/// Preferences hold both ways, and a user of undisclosed gender only ever wants `any`.
pub fn preferences_agree(a: &Seat<'_>, b: &Seat<'_>) -> bool {
    let undisclosed_ok = |s: &Seat<'_>| s.gender != Gender::Undisclosed || s.want == Want::Any;
    undisclosed_ok(a) && undisclosed_ok(b) && accepts(a.want, b.gender) && accepts(b.want, a.gender)
}

/// Every rule: never oneself (nor one's own other socket: same pseudonym), preferences both
/// ways, no block either way, not either one's previous partner.
pub fn compatible(a: &Seat<'_>, b: &Seat<'_>) -> bool {
    a.pseudonym != b.pseudonym
        && preferences_agree(a, b)
        && !a.blocked.contains(b.pseudonym)
        && !b.blocked.contains(a.pseudonym)
        && a.last_partner != Some(b.pseudonym)
        && b.last_partner != Some(a.pseudonym)
}

/// Interests both share, compared case-insensitively, in `a`'s order, normalised to lower case.
pub fn common_interests(a: &[String], b: &[String]) -> Vec<String> {
    let theirs: HashSet<String> = b.iter().map(|s| normalise(s)).collect();
    let mut seen = HashSet::new();
    a.iter()
        .map(|s| normalise(s))
        .filter(|s| theirs.contains(s) && seen.insert(s.clone()))
        .collect()
}

/// Trimmed, lower-case form of an interest.
pub fn normalise(interest: &str) -> String {
    interest.trim().to_lowercase()
}

/// Picks the partner for `me` among the first `scan` waiting users (oldest first, with the time
/// they joined in milliseconds): the longest-waiting compatible one, shared interests breaking
/// ties within [`TIE_WINDOW_MS`]. Returns its index in `waiting`. The scan stops at the first
/// user in a later tie bucket than the best so far, or at a best that shares every interest, so
/// a join usually costs a few comparisons.
pub fn choose<'a>(
    me: &Seat<'_>,
    waiting: impl IntoIterator<Item = (u64, Seat<'a>)>,
    scan: usize,
) -> Option<usize> {
    let mut best: Option<(usize, u64, usize)> = None; // (index, joined bucket, shared interests)
    for (i, (joined_ms, other)) in waiting.into_iter().take(scan).enumerate() {
        let bucket = joined_ms / TIE_WINDOW_MS;
        // Oldest first: once past the best candidate's tie bucket, nobody later can win.
        if best.is_some_and(|(_, b, _)| bucket > b) {
            break;
        }
        if !compatible(me, &other) {
            continue;
        }
        let shared = common_interests(me.interests, other.interests).len();
        let better = match best {
            None => true,
            Some((_, b_bucket, b_shared)) => {
                bucket < b_bucket || (bucket == b_bucket && shared > b_shared)
            }
        };
        if better {
            best = Some((i, bucket, shared));
            // Sharing every interest cannot be beaten.
            if shared >= me.interests.len() {
                break;
            }
        }
    }
    best.map(|(i, _, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn seat<'a>(p: &'a str, g: Gender, w: Want, blocked: &'a HashSet<String>) -> Seat<'a> {
        Seat {
            pseudonym: p,
            gender: g,
            want: w,
            interests: &[],
            last_partner: None,
            blocked,
        }
    }

    #[test]
    fn preference_table() {
        let none = HashSet::new();
        let (m, f, u) = (Gender::Male, Gender::Female, Gender::Undisclosed);
        let ok = |a: (Gender, Want), b: (Gender, Want)| {
            compatible(&seat("a", a.0, a.1, &none), &seat("b", b.0, b.1, &none))
        };
        assert!(ok((m, Want::F), (f, Want::M)));
        assert!(ok((m, Want::Any), (f, Want::M)));
        assert!(!ok((m, Want::F), (f, Want::F)), "she wants women only");
        assert!(!ok((m, Want::M), (f, Want::Any)));
        assert!(ok((u, Want::Any), (m, Want::Any)));
        assert!(
            !ok((u, Want::Any), (m, Want::M)),
            "undisclosed is only for those who want any"
        );
        assert!(
            !ok((u, Want::M), (m, Want::Any)),
            "undisclosed users may only want any"
        );
        assert!(ok((u, Want::Any), (u, Want::Any)));
    }

    #[test]
    fn blocks_last_partner_and_self() {
        let none = HashSet::new();
        let blocked_b: HashSet<String> = ["b".to_string()].into();
        let a = seat("a", Gender::Male, Want::Any, &blocked_b);
        let b = seat("b", Gender::Female, Want::Any, &none);
        assert!(
            !compatible(&a, &b) && !compatible(&b, &a),
            "a block works both ways"
        );
        let a = Seat {
            last_partner: Some("b"),
            ..seat("a", Gender::Male, Want::Any, &none)
        };
        assert!(!compatible(&a, &b) && !compatible(&b, &a));
        let a2 = seat("a", Gender::Male, Want::Any, &none);
        assert!(
            !compatible(&a2, &seat("a", Gender::Female, Want::Any, &none)),
            "same device, other socket"
        );
    }

    #[test]
    fn oldest_wins_and_interests_break_ties() {
        let none = HashSet::new();
        let jazz = vec!["Jazz".to_string(), "chess".to_string()];
        let me = Seat {
            interests: &jazz,
            ..seat("me", Gender::Male, Want::Any, &none)
        };
        let (x, y, z) = (
            vec!["jazz".to_string()],
            vec![],
            vec!["chess ".to_string(), "JAZZ".to_string()],
        );
        let waiting = |a: u64, b: u64, c: u64| {
            vec![
                (
                    a,
                    Seat {
                        interests: &y,
                        ..seat("y", Gender::Female, Want::Any, &none)
                    },
                ),
                (
                    b,
                    Seat {
                        interests: &x,
                        ..seat("x", Gender::Female, Want::Any, &none)
                    },
                ),
                (
                    c,
                    Seat {
                        interests: &z,
                        ..seat("z", Gender::Female, Want::Any, &none)
                    },
                ),
            ]
        };
        assert_eq!(
            choose(&me, waiting(1000, 5000, 9000), 10),
            Some(0),
            "longest waiting"
        );
        assert_eq!(
            choose(&me, waiting(1000, 1100, 1200), 10),
            Some(2),
            "same second: most shared interests"
        );
        assert_eq!(
            choose(&me, waiting(1000, 1100, 1200), 2),
            Some(1),
            "the scan is bounded"
        );
        assert_eq!(common_interests(&jazz, &z), vec!["jazz", "chess"]);
    }

    fn gender() -> impl Strategy<Value = Gender> {
        prop_oneof![
            Just(Gender::Male),
            Just(Gender::Female),
            Just(Gender::Undisclosed)
        ]
    }
    fn want() -> impl Strategy<Value = Want> {
        prop_oneof![Just(Want::Any), Just(Want::M), Just(Want::F)]
    }

    proptest! {
        #[test]
        fn compatibility_is_symmetric(g1 in gender(), w1 in want(), g2 in gender(), w2 in want(),
                                      block_ab in any::<bool>(), last in any::<bool>()) {
            let none = HashSet::new();
            let blocks: HashSet<String> = if block_ab { ["b".to_string()].into() } else { HashSet::new() };
            let a = Seat { last_partner: last.then_some("b"), ..seat("a", g1, w1, &blocks) };
            let b = seat("b", g2, w2, &none);
            prop_assert_eq!(compatible(&a, &b), compatible(&b, &a));
            if compatible(&a, &b) {
                prop_assert!(accepts(w1, g2) && accepts(w2, g1));
                prop_assert!(!block_ab && !last);
            }
        }

        #[test]
        fn choice_is_compatible_and_nothing_older_was_compatible(
            me in (gender(), want()),
            queue in proptest::collection::vec((gender(), want(), 0u64..5000), 0..40),
            scan in 1usize..50,
        ) {
            let none = HashSet::new();
            let names: Vec<String> = (0..queue.len()).map(|i| format!("w{i}")).collect();
            let mut sorted = queue.clone();
            sorted.sort_by_key(|q| q.2);
            let me = seat("me", me.0, me.1, &none);
            let seats: Vec<(u64, Seat)> = sorted.iter().zip(&names).map(|((g, w, t), n)| (*t, seat(n, *g, *w, &none))).collect();
            match choose(&me, seats.clone(), scan) {
                Some(i) => {
                    prop_assert!(i < scan);
                    prop_assert!(compatible(&me, &seats[i].1));
                    for (t, s) in &seats[..i] {
                        prop_assert!(!compatible(&me, s) || t / TIE_WINDOW_MS == seats[i].0 / TIE_WINDOW_MS);
                    }
                }
                None => {
                    for (_, s) in seats.iter().take(scan) {
                        prop_assert!(!compatible(&me, s));
                    }
                }
            }
        }
    }
}
