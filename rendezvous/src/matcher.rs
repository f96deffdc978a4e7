//! The matching and moderation rules (DESIGN.md §5): who may be matched with whom, which
//! waiting user a newcomer gets, who is admitted, when reports ban.
//!
//! Pure: the stores load the facts (tickets, blocks, last partners, bans, counts) and ask these
//! functions. The Redis store's scripts apply the same rules inside Redis, mirrored function by
//! function under the same names in `store/lua/rules.lua`; `store/lua_mirror.rs` runs random
//! queues through both and demands the same choice.

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
    /// Normalised (see [`normalise`]) and without repeats, as a ticket holds them.
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
    classes_agree((a.gender, a.want), (b.gender, b.want))
}

/// [`preferences_agree`] on what it reads of each side: its gender and what it wants.
pub fn classes_agree(
    (a_gender, a_want): (Gender, Want),
    (b_gender, b_want): (Gender, Want),
) -> bool {
    let undisclosed_ok = |gender, want| gender != Gender::Undisclosed || want == Want::Any;
    undisclosed_ok(a_gender, a_want)
        && undisclosed_ok(b_gender, b_want)
        && accepts(a_want, b_gender)
        && accepts(b_want, a_gender)
}

/// Every rule: never oneself (nor one's own other socket: same pseudonym), preferences both
/// ways, no block either way, not either one's previous partner. Checked in this order, the
/// cheap ones first (the Lua looks the later facts up only when it gets to them).
pub fn compatible(a: &Seat<'_>, b: &Seat<'_>) -> bool {
    a.pseudonym != b.pseudonym
        && preferences_agree(a, b)
        && !a.blocked.contains(b.pseudonym)
        && !b.blocked.contains(a.pseudonym)
        && a.last_partner != Some(b.pseudonym)
        && b.last_partner != Some(a.pseudonym)
}

/// How many of `theirs` are among `mine` (both as tickets hold them: normalised, no repeats).
pub fn shared(mine: &[String], theirs: &[String]) -> usize {
    theirs.iter().filter(|i| mine.contains(i)).count()
}

/// Interests both share, compared case-insensitively, in `a`'s order, normalised to lower case
/// (what both users are told).
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

/// A waiting ticket as a join finds it: its seat and what the store knows of its device.
#[derive(Debug, Clone)]
pub struct Waiting<'a> {
    pub joined_ms: u64,
    pub seat: Seat<'a>,
    /// Its instance is alive: its heartbeat runs and it listens on its channel (else it is a
    /// ghost of a dead instance).
    pub alive: bool,
    /// Its device was banned after it queued.
    pub banned: bool,
    /// Its device has no matches left today.
    pub exhausted: bool,
}

/// What a join does with a waiting ticket before comparing it (see [`triage`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triage {
    /// Never to be matched: taken out of the queue.
    Drop,
    /// Not now: left where it is.
    Skip,
    /// Compared with the joiner.
    Consider,
}

/// An older ticket of the joiner's own device is dropped (one ticket per device, however many
/// sockets it opens). Past that, a ticket the joiner's preferences rule out is passed over
/// before anything is looked up, so a queue of the wrong people costs one read each; of the
/// others, a ghost of a dead instance and a device banned after it queued are dropped, and a
/// device out of matches for today is passed over, and stays. (The heartbeat's sweep drops
/// ghosts wherever they are.)
pub fn triage(me: &Seat<'_>, w: &Waiting<'_>) -> Triage {
    if w.seat.pseudonym == me.pseudonym {
        Triage::Drop
    } else if !preferences_agree(me, &w.seat) {
        Triage::Skip
    } else if !w.alive || w.banned {
        Triage::Drop
    } else if w.exhausted {
        Triage::Skip
    } else {
        Triage::Consider
    }
}

/// What a join decided (see [`choose`]); indices into the waiting tickets it was given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    pub partner: Option<usize>,
    /// Tickets to take out of the queue ([`Triage::Drop`]), in order.
    pub dropped: Vec<usize>,
}

/// Picks the partner for `me` among the first `scan` waiting tickets (oldest first): the
/// longest-waiting compatible one, shared interests breaking ties within [`TIE_WINDOW_MS`].
/// Every ticket looked at counts towards `scan`, whatever [`triage`] makes of it, so a join's
/// work is bounded. The scan stops at the first ticket in a later tie bucket than the best so
/// far, or at a best that shares every interest, so a join usually looks at a few.
pub fn choose<'a>(
    me: &Seat<'_>,
    waiting: impl IntoIterator<Item = Waiting<'a>>,
    scan: usize,
) -> Choice {
    let mut choice = Choice::default();
    let mut best: Option<(u64, usize)> = None; // (joined bucket, shared interests)
    for (i, w) in waiting.into_iter().take(scan).enumerate() {
        let bucket = w.joined_ms / TIE_WINDOW_MS;
        // Oldest first: once past the best candidate's tie bucket, nobody later can win.
        if best.is_some_and(|(b, _)| bucket > b) {
            break;
        }
        match triage(me, &w) {
            Triage::Drop => {
                choice.dropped.push(i);
                continue;
            }
            Triage::Skip => continue,
            Triage::Consider => {}
        }
        if !compatible(me, &w.seat) {
            continue;
        }
        let s = shared(me.interests, w.seat.interests);
        if best.is_none_or(|(b, bs)| bucket < b || (bucket == b && s > bs)) {
            best = Some((bucket, s));
            choice.partner = Some(i);
            // Sharing every interest cannot be beaten.
            if s >= me.interests.len() {
                break;
            }
        }
    }
    choice
}

/// Whether a device may connect or join, and how many matches it has left today.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Welcome { daily_remaining: u32 },
    Banned { retry_after: u64 },
}

/// The ban first (`ban_left_ms`: what is left of it), then the daily limit.
pub fn admission(ban_left_ms: Option<u64>, used_today: u32, daily_limit: u32) -> Admission {
    match ban_left_ms {
        Some(ms) => Admission::Banned {
            retry_after: ms.div_ceil(1000).max(1),
        },
        None => Admission::Welcome {
            daily_remaining: daily_limit.saturating_sub(used_today),
        },
    }
}

/// Whether a report bans its target: at `threshold` unique reporters, unless a ban already
/// runs (a ban consumes the reports behind it).
pub fn report_bans(reporters: u32, threshold: u32, already_banned: bool) -> bool {
    !already_banned && reporters >= threshold
}

/// Random genders and preferences, for the property tests here and in `store/lua_mirror.rs`.
#[cfg(test)]
pub(crate) mod strategy {
    use super::*;
    use proptest::prelude::*;

    pub fn gender() -> impl Strategy<Value = Gender> {
        prop_oneof![
            Just(Gender::Male),
            Just(Gender::Female),
            Just(Gender::Undisclosed)
        ]
    }

    pub fn want() -> impl Strategy<Value = Want> {
        prop_oneof![Just(Want::Any), Just(Want::M), Just(Want::F)]
    }
}

#[cfg(test)]
mod tests {
    use super::strategy::{gender, want};
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

    /// A live, unbanned ticket with matches left.
    fn live(joined_ms: u64, seat: Seat<'_>) -> Waiting<'_> {
        Waiting {
            joined_ms,
            seat,
            alive: true,
            banned: false,
            exhausted: false,
        }
    }

    #[test]
    fn oldest_wins_and_interests_break_ties() {
        let none = HashSet::new();
        let jazz = vec!["jazz".to_string(), "chess".to_string()];
        let me = Seat {
            interests: &jazz,
            ..seat("me", Gender::Male, Want::Any, &none)
        };
        let (x, y, z) = (
            vec!["jazz".to_string()],
            vec![],
            vec!["chess".to_string(), "jazz".to_string()],
        );
        let with = |name, interests| Seat {
            interests,
            ..seat(name, Gender::Female, Want::Any, &none)
        };
        let waiting = |a: u64, b: u64, c: u64| {
            vec![
                live(a, with("y", &y)),
                live(b, with("x", &x)),
                live(c, with("z", &z)),
            ]
        };
        let partner = |w, scan| choose(&me, w, scan).partner;
        assert_eq!(
            partner(waiting(1000, 5000, 9000), 10),
            Some(0),
            "longest waiting"
        );
        assert_eq!(
            partner(waiting(1000, 1100, 1200), 10),
            Some(2),
            "same second: most shared interests"
        );
        assert_eq!(
            partner(waiting(1000, 1100, 1200), 2),
            Some(1),
            "the scan is bounded"
        );
        let shouted = vec!["CHESS ".to_string(), "Jazz".to_string()];
        assert_eq!(common_interests(&jazz, &shouted), vec!["jazz", "chess"]);
    }

    #[test]
    fn ghosts_own_tickets_and_banned_are_dropped_exhausted_are_passed_over() {
        let none = HashSet::new();
        let me = seat("me", Gender::Male, Want::Any, &none);
        let her = |name| seat(name, Gender::Female, Want::Any, &none);
        let waiting = vec![
            Waiting {
                alive: false,
                ..live(1000, her("ghost"))
            },
            live(1000, seat("me", Gender::Female, Want::Any, &none)),
            Waiting {
                banned: true,
                ..live(1000, her("banned"))
            },
            Waiting {
                exhausted: true,
                ..live(1000, her("tired"))
            },
            live(1000, her("free")),
        ];
        assert_eq!(
            choose(&me, waiting.clone(), 10),
            Choice {
                partner: Some(4),
                dropped: vec![0, 1, 2]
            }
        );
        assert_eq!(
            choose(&me, waiting, 4),
            Choice {
                partner: None,
                dropped: vec![0, 1, 2]
            },
            "dropped and passed-over tickets count towards the scan"
        );
        let him = seat("him", Gender::Male, Want::F, &none);
        let wrong = vec![Waiting {
            alive: false,
            banned: true,
            ..live(1000, seat("ghost", Gender::Female, Want::F, &none))
        }];
        assert_eq!(
            choose(&him, wrong, 10),
            Choice::default(),
            "one the preferences rule out is passed over before anything is looked up"
        );
    }

    #[test]
    fn admission_ban_first_then_daily_limit_and_reports() {
        assert_eq!(
            admission(Some(1), 0, 5),
            Admission::Banned { retry_after: 1 }
        );
        assert_eq!(
            admission(Some(60_001), 9, 5),
            Admission::Banned { retry_after: 61 }
        );
        assert_eq!(
            admission(None, 2, 5),
            Admission::Welcome { daily_remaining: 3 }
        );
        assert_eq!(
            admission(None, 9, 5),
            Admission::Welcome { daily_remaining: 0 }
        );
        assert!(!report_bans(2, 3, false));
        assert!(report_bans(3, 3, false));
        assert!(!report_bans(4, 3, true), "a ban already runs");
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
            let seats: Vec<Waiting> = sorted.iter().zip(&names).map(|((g, w, t), n)| live(*t, seat(n, *g, *w, &none))).collect();
            match choose(&me, seats.clone(), scan).partner {
                Some(i) => {
                    prop_assert!(i < scan);
                    prop_assert!(compatible(&me, &seats[i].seat));
                    for w in &seats[..i] {
                        prop_assert!(!compatible(&me, &w.seat) || w.joined_ms / TIE_WINDOW_MS == seats[i].joined_ms / TIE_WINDOW_MS);
                    }
                }
                None => {
                    for w in seats.iter().take(scan) {
                        prop_assert!(!compatible(&me, &w.seat));
                    }
                }
            }
        }
    }
}
