//! One test suite, run on both stores: the in-memory store, and the Redis store against a real
//! `redis-server` and against a real Redis Cluster of three primaries.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anonchat_protocol::rendezvous::{Transport, Want};
use anonchat_protocol::token::Gender;
use anonchat_rendezvous::matcher::{self, Seat};
use anonchat_rendezvous::store::{Admission, Inbox, JoinOutcome, Store, StoreConfig, Ticket};
use rand::Rng;

const INSTANCE: &str = "i1";

fn ticket(session: &str, pseudonym: &str, gender: Gender, want: Want) -> Ticket {
    Ticket {
        session: session.into(),
        instance: INSTANCE.into(),
        pseudonym: pseudonym.into(),
        gender,
        want,
        interests: vec![],
        nickname: format!("nick-{pseudonym}"),
        bio: "a bio long enough".into(),
        transports: vec![Transport::Webrtc],
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn matched<S: Store>(store: &S, t: &Ticket) -> Option<Ticket> {
    match store.join(t, now_ms()).await.unwrap() {
        JoinOutcome::Matched { partner, .. } => Some(partner),
        JoinOutcome::Queued { .. } => None,
        other => panic!("unexpected {other:?}"),
    }
}

async fn first_pair_matches<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 2).await.unwrap();
    let a = ticket("sa", "pa", Gender::Male, Want::F);
    let b = ticket("sb", "pb", Gender::Female, Want::Any);
    assert_eq!(
        store.join(&a, now_ms()).await.unwrap(),
        JoinOutcome::Queued { waiting: 1 }
    );
    assert_eq!(store.stats().await.unwrap().waiting, 1);
    assert_eq!(matched(&store, &b).await, Some(a.clone()));
    assert_eq!(store.stats().await.unwrap().waiting, 0);
    assert_eq!(store.stats().await.unwrap().online, 2);
    // Both used one match of the day.
    for p in ["pa", "pb"] {
        assert_eq!(
            store.admit(p, (now_ms() / 1000) as i64).await.unwrap(),
            Admission::Welcome {
                daily_remaining: 99
            }
        );
    }
}

async fn preferences_blocks_self_and_last_partner<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    // Preferences must hold both ways.
    assert_eq!(
        matched(&store, &ticket("s1", "p1", Gender::Male, Want::M)).await,
        None
    );
    assert_eq!(
        matched(&store, &ticket("s2", "p2", Gender::Female, Want::Any)).await,
        None
    );
    // The same device on another socket is never matched with itself: its new ticket
    // replaces the old one.
    assert_eq!(
        matched(&store, &ticket("s3", "p2", Gender::Female, Want::Any)).await,
        None
    );
    // Undisclosed only with people who want any.
    assert_eq!(
        matched(&store, &ticket("s4", "p4", Gender::Undisclosed, Want::Any))
            .await
            .map(|t| t.session),
        Some("s3".into())
    );
    // Blocks work both ways.
    store.block("p5", "p3").await.unwrap();
    store.cancel("s3").await.unwrap();
    assert_eq!(
        matched(&store, &ticket("s5", "p5", Gender::Female, Want::Any)).await,
        None
    );
    assert_eq!(
        matched(&store, &ticket("s3b", "p3", Gender::Female, Want::Any)).await,
        None,
        "p3 is blocked by p5"
    );
    // No immediate rematch: p2 and p4 were just partners.
    store.cancel("s5").await.unwrap();
    store.cancel("s3b").await.unwrap();
    store.cancel("s1").await.unwrap();
    assert_eq!(
        matched(&store, &ticket("s2b", "p2", Gender::Female, Want::Any)).await,
        None
    );
    assert_eq!(
        matched(&store, &ticket("s4b", "p4", Gender::Undisclosed, Want::Any)).await,
        None
    );
    assert_eq!(store.stats().await.unwrap().waiting, 2);
}

/// A scan through a crowd that fits nobody (men who want women, as much of a queue may be):
/// the crowd is passed over and kept, the joiner's own older ticket (as much a misfit for it)
/// is still dropped, and a ticket that fits is found behind them all.
async fn a_crowd_that_fits_nobody_is_passed_over<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    let man_for_women = |s: &str, p: &str| ticket(s, p, Gender::Male, Want::F);
    for i in 0..30 {
        let crowd = man_for_women(&format!("s{i}"), &format!("m{i}"));
        assert_eq!(matched(&store, &crowd).await, None);
    }
    for session in ["old", "new"] {
        assert_eq!(matched(&store, &man_for_women(session, "me")).await, None);
    }
    assert_eq!(
        store.stats().await.unwrap().waiting,
        31,
        "the old ticket dropped"
    );
    // A man who wants men, and a woman who wants women: neither fits anyone waiting.
    let him = ticket("t", "t", Gender::Male, Want::M);
    assert_eq!(matched(&store, &him).await, None);
    let her = ticket("w", "w", Gender::Female, Want::F);
    assert_eq!(matched(&store, &her).await, None);
    assert_eq!(store.stats().await.unwrap().waiting, 33, "nobody dropped");
    // Another man who wants men finds him behind them all.
    let partner = matched(&store, &ticket("u", "u", Gender::Male, Want::M)).await;
    assert_eq!(partner.map(|t| t.session), Some("t".into()));
    assert_eq!(store.stats().await.unwrap().waiting, 32);
}

async fn interests_break_ties_and_are_shared<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    // a and b both want men only, so they wait side by side.
    let mut a = ticket("sa", "pa", Gender::Female, Want::M);
    a.interests = vec!["cats".into()];
    let mut b = ticket("sb", "pb", Gender::Female, Want::M);
    b.interests = vec!["jazz".into(), "chess".into()];
    let mut c = ticket("sc", "pc", Gender::Male, Want::Any);
    c.interests = vec!["chess".into(), "jazz".into()];
    // Inside one tie bucket (buckets are whole seconds), not straddling a boundary.
    let t = now_ms() / 1000 * 1000 + 100;
    store.join(&a, t).await.unwrap();
    store.join(&b, t + 10).await.unwrap();
    match store.join(&c, t + 20).await.unwrap() {
        JoinOutcome::Matched {
            partner,
            common_interests,
        } => {
            assert_eq!(
                partner.session, "sb",
                "same second: the one sharing more interests"
            );
            assert_eq!(common_interests, vec!["chess", "jazz"]);
        }
        other => panic!("{other:?}"),
    }
}

async fn same_millisecond_joins_keep_their_order<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    let t = now_ms();
    // Session names sort the other way round, so an order by name would show.
    for round in 0..20 {
        let first = ticket(
            &format!("z{round}"),
            &format!("pz{round}"),
            Gender::Male,
            Want::F,
        );
        let second = ticket(
            &format!("a{round}"),
            &format!("pa{round}"),
            Gender::Undisclosed,
            Want::Any,
        );
        store.join(&first, t).await.unwrap();
        store.join(&second, t).await.unwrap();
        let joiner = ticket(
            &format!("w{round}"),
            &format!("pw{round}"),
            Gender::Female,
            Want::Any,
        );
        let partner = matched(&store, &joiner).await.expect("a partner");
        assert_eq!(
            partner.session, first.session,
            "the one who came first, even in the same millisecond"
        );
        store.cancel(&second.session).await.unwrap();
    }
}

async fn cancel_removes_from_the_queue<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    store
        .join(&ticket("s1", "p1", Gender::Male, Want::Any), now_ms())
        .await
        .unwrap();
    assert!(store.cancel("s1").await.unwrap());
    assert!(!store.cancel("s1").await.unwrap());
    assert_eq!(
        matched(&store, &ticket("s2", "p2", Gender::Female, Want::Any)).await,
        None
    );
}

async fn reports_ban_at_the_threshold_and_count_once_per_reporter<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    let now = (now_ms() / 1000) as i64;
    for _ in 0..10 {
        let r = store.report("r1", "target").await.unwrap();
        assert_eq!(
            (r.reporters, r.banned),
            (1, false),
            "one reporter alone bans no one"
        );
    }
    assert_eq!(store.report("r2", "target").await.unwrap().reporters, 2);
    let third = store.report("r3", "target").await.unwrap();
    assert!(third.banned, "threshold 3 reached");
    match store.admit("target", now).await.unwrap() {
        Admission::Banned { retry_after } => {
            assert!((86_000..=86_400).contains(&retry_after), "{retry_after}")
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store
            .join(&ticket("st", "target", Gender::Male, Want::Any), now_ms())
            .await
            .unwrap(),
        JoinOutcome::Banned { .. }
    ));
    assert!(store.unban("target").await.unwrap());
    assert!(matches!(
        store.admit("target", now).await.unwrap(),
        Admission::Welcome { .. }
    ));
    assert!(
        !store.report("r4", "target").await.unwrap().banned,
        "reports start again after an unban"
    );
}

/// The admin reset forgets queue, bans and reports, and keeps the running instances.
async fn reset_forgets_all_but_the_instances<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 1).await.unwrap();
    let now = (now_ms() / 1000) as i64;
    for reporter in ["r1", "r2", "r3"] {
        store.report(reporter, "target").await.unwrap();
    }
    assert!(matches!(
        store.admit("target", now).await.unwrap(),
        Admission::Banned { .. }
    ));
    assert_eq!(
        store
            .join(&ticket("sw", "waiter", Gender::Male, Want::M), now_ms())
            .await
            .unwrap(),
        JoinOutcome::Queued { waiting: 1 }
    );
    store.reset().await.unwrap();
    assert_eq!(store.stats().await.unwrap().waiting, 0);
    assert!(matches!(
        store.admit("target", now).await.unwrap(),
        Admission::Welcome { .. }
    ));
    assert_eq!(store.report("r1", "target").await.unwrap().reporters, 1);
    assert!(
        store.heartbeat(INSTANCE, 1).await.unwrap(),
        "the instance's heartbeat is kept"
    );
    assert_eq!(store.stats().await.unwrap().online, 1);
}

async fn daily_limit_stops_joining<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    store
        .join(&ticket("s1", "p1", Gender::Male, Want::Any), now_ms())
        .await
        .unwrap();
    assert!(
        matched(&store, &ticket("s2", "p2", Gender::Female, Want::Any))
            .await
            .is_some()
    );
    assert_eq!(
        store
            .join(&ticket("s3", "p1", Gender::Male, Want::Any), now_ms())
            .await
            .unwrap(),
        JoinOutcome::DailyLimit
    );
    let now = (now_ms() / 1000) as i64;
    assert_eq!(
        store.admit("p1", now).await.unwrap(),
        Admission::Welcome { daily_remaining: 0 }
    );
}

/// The instance whose tickets the suite's tests queue: its heartbeat runs and it listens on
/// its channel (as long as the receiver is kept).
async fn listening<S: Store>(store: &S) -> tokio::sync::mpsc::Receiver<Inbox> {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    listen(store, INSTANCE).await
}

/// Subscribes to `instance`'s channel, once it is listened to.
async fn listen<S: Store>(store: &S, instance: &str) -> tokio::sync::mpsc::Receiver<Inbox> {
    let mut rx = store.subscribe(instance).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
    assert_eq!(first.unwrap(), Some(Inbox::Listening));
    rx
}

/// A ticket of an instance that is not alive is never matched, and is cleaned when seen: one
/// killed outright (its heartbeat still runs for up to its TTL, but nobody listens on its
/// channel any more), and one hung (still subscribed, but its heartbeat stopped).
async fn tickets_of_dead_instances_are_never_matched<S: Store>(store: S) {
    let s1 = ticket("s1", "p1", Gender::Male, Want::Any);
    store.heartbeat("killed", 1).await.unwrap();
    let mut ghost = ticket("ghost", "pg", Gender::Female, Want::Any);
    ghost.instance = "killed".into();
    store.join(&ghost, now_ms()).await.unwrap();
    assert_eq!(matched(&store, &s1).await, None);
    assert_eq!(
        store.stats().await.unwrap().waiting,
        1,
        "the killed instance's ticket was cleaned at once, s1 waits"
    );
    assert!(store.cancel("s1").await.unwrap());

    store.heartbeat("hung", 1).await.unwrap();
    let _hung_inbox = listen(&store, "hung").await;
    let mut ghost = ticket("ghost2", "pg2", Gender::Female, Want::Any);
    ghost.instance = "hung".into();
    store.join(&ghost, now_ms()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1300)).await; // heartbeat TTL is 1 s here
    store.heartbeat(INSTANCE, 1).await.unwrap();
    assert_eq!(matched(&store, &s1).await, None);
    assert_eq!(
        store.stats().await.unwrap().waiting,
        1,
        "the ghost was cleaned, s1 waits"
    );
    // A retiring instance takes its tickets with it at once.
    store.retire(INSTANCE).await.unwrap();
    assert_eq!(store.stats().await.unwrap().waiting, 0);
}

async fn instances_talk_through_their_channels<S: Store>(store: S) {
    assert_eq!(
        store.publish("i2", "anyone?".into()).await.unwrap(),
        0,
        "nobody listens yet"
    );
    let mut rx = listen(&store, "i2").await;
    assert_eq!(store.publish("i2", "hello i2".into()).await.unwrap(), 1);
    let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .unwrap();
    assert_eq!(got, Some(Inbox::Payload("hello i2".into())));
    // An instance that died (its listener dropped) hears nothing, whatever its heartbeat says.
    drop(rx);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while store.publish("i2", "still there?".into()).await.unwrap() != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still heard");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A join again is nothing while the ticket waits, nothing while a partner's match for it is
/// on its way, and a join once it is lost or that match was undone; an undone match leaves no
/// trace (not a last partner, not one of today's matches).
async fn a_join_again_tells_lost_from_taken<S: Store>(store: S) {
    use anonchat_rendezvous::store::Rejoin;
    let her = ticket("s1", "p1", Gender::Female, Want::Any);
    let him = ticket("s2", "p2", Gender::Male, Want::Any);
    let today = || (now_ms() / 1000) as i64;
    let before = store.admit("p1", today()).await.unwrap();
    store.join(&her, now_ms()).await.unwrap();
    assert_eq!(
        store.rejoin(&her, now_ms()).await.unwrap(),
        Rejoin::StillWaiting
    );
    assert!(matched(&store, &him).await.is_some());
    assert_eq!(store.rejoin(&her, now_ms()).await.unwrap(), Rejoin::Taken);
    assert_ne!(store.admit("p1", today()).await.unwrap(), before, "counted");
    store.undo("p2", "p1", "s1", now_ms()).await.unwrap();
    assert_eq!(
        store.admit("p1", today()).await.unwrap(),
        before,
        "not counted"
    );
    assert!(matches!(
        store.rejoin(&her, now_ms()).await.unwrap(),
        Rejoin::Joined(JoinOutcome::Queued { .. })
    ));
    // Not each other's last partner: they can meet right away.
    assert!(matched(&store, &him).await.is_some());
    assert_eq!(store.stats().await.unwrap().waiting, 0);
}

/// A heartbeat says whether the store still knew the instance: not on the first beat, nor
/// after the instance expired (what an outage longer than the TTL, or a restarted Redis without
/// its data, looks like).
async fn a_heartbeat_tells_whether_the_store_forgot_the_instance<S: Store>(store: S) {
    assert!(!store.heartbeat("i3", 0).await.unwrap(), "first beat");
    assert!(store.heartbeat("i3", 0).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1300)).await; // heartbeat TTL is 1 s here
    assert!(!store.heartbeat("i3", 0).await.unwrap(), "expired");
    assert!(store.heartbeat("i3", 0).await.unwrap());
}

/// 2,000 users with random genders, preferences and blocks join at once.
async fn two_thousand_concurrent_joins_keep_every_rule<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 2000).await.unwrap();
    let mut rng = rand::thread_rng();
    let n = 2000;
    let genders = [Gender::Male, Gender::Female, Gender::Undisclosed];
    let wants = [Want::Any, Want::M, Want::F];
    let tickets: Vec<Ticket> = (0..n)
        .map(|i| {
            let g = genders[rng.gen_range(0..3)];
            let w = if g == Gender::Undisclosed {
                Want::Any
            } else {
                wants[rng.gen_range(0..3)]
            };
            ticket(&format!("s{i}"), &format!("p{i}"), g, w)
        })
        .collect();
    let mut blocks: HashMap<String, HashSet<String>> = HashMap::new();
    for _ in 0..n {
        let (a, b) = (rng.gen_range(0..n), rng.gen_range(0..n));
        store
            .block(&format!("p{a}"), &format!("p{b}"))
            .await
            .unwrap();
        blocks
            .entry(format!("p{a}"))
            .or_default()
            .insert(format!("p{b}"));
    }
    let tasks: Vec<_> = tickets
        .iter()
        .cloned()
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let outcome = store.join(&t, now_ms()).await.unwrap();
                (t, outcome)
            })
        })
        .collect();
    let mut partner_of: HashMap<String, String> = HashMap::new();
    let mut queued = HashSet::new();
    for task in tasks {
        let (t, outcome) = task.await.unwrap();
        match outcome {
            JoinOutcome::Matched { partner, .. } => {
                for (a, b) in [
                    (&t.session, &partner.session),
                    (&partner.session, &t.session),
                ] {
                    assert!(
                        partner_of.insert(a.clone(), b.clone()).is_none(),
                        "{a} matched twice"
                    );
                }
            }
            JoinOutcome::Queued { .. } => {
                queued.insert(t.session.clone());
            }
            other => panic!("{other:?}"),
        }
    }
    let by_session: HashMap<&str, &Ticket> =
        tickets.iter().map(|t| (t.session.as_str(), t)).collect();
    let none = HashSet::new();
    let seat =
        |t: &'_ Ticket| -> (String, Gender, Want) { (t.pseudonym.clone(), t.gender, t.want) };
    let check = |a: &Ticket, b: &Ticket| {
        let (ba, bb) = (
            blocks.get(&a.pseudonym).unwrap_or(&none),
            blocks.get(&b.pseudonym).unwrap_or(&none),
        );
        let sa = Seat {
            pseudonym: &a.pseudonym,
            gender: a.gender,
            want: a.want,
            interests: &[],
            last_partner: None,
            blocked: ba,
        };
        let sb = Seat {
            pseudonym: &b.pseudonym,
            gender: b.gender,
            want: b.want,
            interests: &[],
            last_partner: None,
            blocked: bb,
        };
        matcher::compatible(&sa, &sb)
    };
    for (a, b) in &partner_of {
        let (ta, tb) = (by_session[a.as_str()], by_session[b.as_str()]);
        assert!(
            check(ta, tb),
            "{:?} and {:?} broke a rule",
            seat(ta),
            seat(tb)
        );
    }
    // Whoever is still waiting is waiting for a reason: no two compatible users wait together.
    let waiting: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| !partner_of.contains_key(&t.session))
        .collect();
    assert_eq!(
        waiting.len(),
        queued.len() - partner_of.keys().filter(|s| queued.contains(*s)).count()
    );
    for (i, a) in waiting.iter().enumerate() {
        for b in &waiting[i + 1..] {
            assert!(
                !check(a, b),
                "{} and {} could have been matched",
                a.session,
                b.session
            );
        }
    }
    assert_eq!(store.stats().await.unwrap().waiting as usize, waiting.len());
    assert!(
        partner_of.len() > n / 2,
        "most users found someone ({} matched)",
        partner_of.len()
    );
}

/// The review's wall: one device opens `scan` sockets and joins on each wanting only men, so a
/// join that scans only the oldest `scan` tickets sees nobody else.
async fn one_device_holds_one_ticket_however_many_sockets<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    for i in 0..8 {
        let wall = ticket(&format!("wall-{i}"), "wall", Gender::Female, Want::M);
        assert!(matches!(
            store.join(&wall, now_ms()).await.unwrap(),
            JoinOutcome::Queued { .. }
        ));
    }
    assert_eq!(
        store.stats().await.unwrap().waiting,
        1,
        "one ticket for the device"
    );
    store
        .join(&ticket("a", "pa", Gender::Female, Want::Any), now_ms())
        .await
        .unwrap();
    let partner = matched(&store, &ticket("b", "pb", Gender::Female, Want::Any)).await;
    assert_eq!(partner.map(|t| t.session), Some("a".to_owned()));
}

/// One device on three sockets with a daily limit of one: one match, not three.
async fn limits_hold_for_the_partner_too<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    for s in ["s1", "s2", "s3"] {
        store
            .join(&ticket(s, "greedy", Gender::Male, Want::Any), now_ms())
            .await
            .unwrap();
    }
    let mut matches = 0;
    for other in ["p1", "p2", "p3"] {
        let t = ticket(&format!("{other}-s"), other, Gender::Female, Want::Any);
        if matched(&store, &t)
            .await
            .is_some_and(|p| p.pseudonym == "greedy")
        {
            matches += 1;
        }
    }
    assert_eq!(matches, 1);
}

async fn a_device_banned_after_it_queued_is_never_matched<S: Store>(store: S) {
    store.heartbeat(INSTANCE, 0).await.unwrap();
    store
        .join(
            &ticket("early", "soon-banned", Gender::Male, Want::Any),
            now_ms(),
        )
        .await
        .unwrap();
    for reporter in ["r1", "r2", "r3"] {
        store.report(reporter, "soon-banned").await.unwrap();
    }
    let newcomer = ticket("newcomer", "pn", Gender::Female, Want::Any);
    assert!(matched(&store, &newcomer).await.is_none());
    assert_eq!(
        store.stats().await.unwrap().waiting,
        1,
        "the banned device's ticket is gone; the newcomer waits"
    );
}

/// A wall of 8 devices that nobody wants fills the bounded scan: a newcomer does not see the
/// one waiting behind it, but the waiting one, looking again, sees the newcomer.
async fn a_waiting_ticket_looks_again_at_those_behind_it<S: Store>(store: S) {
    use anonchat_rendezvous::store::Rematch;
    store.heartbeat(INSTANCE, 0).await.unwrap();
    for i in 0..8 {
        let wall = ticket(
            &format!("w{i}"),
            &format!("wall{i}"),
            Gender::Female,
            Want::M,
        );
        store.join(&wall, now_ms()).await.unwrap();
    }
    let a = ticket("a", "pa", Gender::Female, Want::Any);
    let b = ticket("b", "pb", Gender::Female, Want::Any);
    store.join(&a, now_ms()).await.unwrap();
    assert!(
        matched(&store, &b).await.is_none(),
        "the scan saw only the wall"
    );
    assert_eq!(
        store.rematch(&b, 0, now_ms()).await.unwrap(),
        Rematch::StillWaiting
    );
    assert_eq!(
        store.stats().await.unwrap().waiting,
        10,
        "nothing queued twice"
    );
    let Rematch::Matched { partner, .. } = store.rematch(&a, 0, now_ms()).await.unwrap() else {
        panic!("a did not find b")
    };
    assert_eq!(partner.session, "b");
    assert_eq!(
        store.stats().await.unwrap().waiting,
        8,
        "both tickets are gone"
    );
    assert_eq!(store.rematch(&a, 0, now_ms()).await.unwrap(), Rematch::Gone);
    assert_eq!(store.rematch(&b, 0, now_ms()).await.unwrap(), Rematch::Gone);
}

/// Each look again sees a new slice of those behind (here 2 at a time), so a partner far
/// behind a run of people it does not want is found after a few looks, for a small cost each.
async fn looking_again_moves_through_the_queue<S: Store>(store: S) {
    use anonchat_rendezvous::store::Rematch;
    store.heartbeat(INSTANCE, 0).await.unwrap();
    // Women who want men: nobody here wants them, and they do not want each other.
    let wall = |i: usize| {
        ticket(
            &format!("w{i}"),
            &format!("wall{i}"),
            Gender::Female,
            Want::M,
        )
    };
    let a = ticket("a", "pa", Gender::Female, Want::Any);
    for i in 0..2 {
        store.join(&wall(i), now_ms()).await.unwrap();
    }
    store.join(&a, now_ms()).await.unwrap();
    for i in 2..6 {
        store.join(&wall(i), now_ms()).await.unwrap();
    }
    store
        .join(&ticket("b", "pb", Gender::Female, Want::Any), now_ms())
        .await
        .unwrap();
    assert_eq!(
        store.stats().await.unwrap().waiting,
        8,
        "b's scan saw only the wall"
    );
    for look in [0, 1] {
        assert_eq!(
            store.rematch(&a, look, now_ms()).await.unwrap(),
            Rematch::StillWaiting
        );
    }
    let Rematch::Matched { partner, .. } = store.rematch(&a, 2, now_ms()).await.unwrap() else {
        panic!("a did not find b at the third look")
    };
    assert_eq!(partner.session, "b");
}

fn config() -> StoreConfig {
    StoreConfig {
        report_threshold: 3,
        heartbeat_ttl: Duration::from_secs(1),
        ..StoreConfig::default()
    }
}

fn scan_of_eight() -> StoreConfig {
    StoreConfig {
        scan: 8,
        ..config()
    }
}

fn slices_of_two() -> StoreConfig {
    StoreConfig {
        scan: 2,
        rescan: 2,
        ..config()
    }
}

fn limited() -> StoreConfig {
    StoreConfig {
        daily_match_limit: 1,
        ..config()
    }
}

macro_rules! suite {
    ($($name:ident => $config:expr),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let store = crate::common::memory($config);
                    let _inbox = super::listening(&store).await;
                    super::$name(store).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let server = crate::common::RedisServer::start();
                    let store = crate::common::redis(&server, $config).await;
                    let _inbox = super::listening(&store).await;
                    super::$name(store).await;
                    // Promise 3: Redis holds nothing without a time-to-live.
                    for (key, ttl) in server.keys_with_ttl() {
                        assert_ne!(ttl, -1, "{key} has no TTL");
                    }
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let cluster = crate::common::RedisCluster::start();
                    let store = crate::common::cluster(&cluster, $config).await;
                    let _inbox = super::listening(&store).await;
                    super::$name(store).await;
                    let keys = cluster.keys_with_ttl();
                    assert!(!keys.is_empty());
                    for (key, ttl) in keys {
                        assert_ne!(ttl, -1, "{key} has no TTL");
                        assert!(key.starts_with("{ac}:"), "{key} is not the store's");
                    }
                }
            )*
        }
    };
}

suite! {
    first_pair_matches => super::config(),
    preferences_blocks_self_and_last_partner => super::config(),
    a_crowd_that_fits_nobody_is_passed_over => super::config(),
    interests_break_ties_and_are_shared => super::config(),
    cancel_removes_from_the_queue => super::config(),
    same_millisecond_joins_keep_their_order => super::config(),
    reports_ban_at_the_threshold_and_count_once_per_reporter => super::config(),
    reset_forgets_all_but_the_instances => super::config(),
    daily_limit_stops_joining => super::limited(),
    tickets_of_dead_instances_are_never_matched => super::config(),
    instances_talk_through_their_channels => super::config(),
    a_heartbeat_tells_whether_the_store_forgot_the_instance => super::config(),
    a_join_again_tells_lost_from_taken => super::config(),
    two_thousand_concurrent_joins_keep_every_rule => super::config(),
    one_device_holds_one_ticket_however_many_sockets => super::scan_of_eight(),
    limits_hold_for_the_partner_too => super::limited(),
    a_device_banned_after_it_queued_is_never_matched => super::config(),
    a_waiting_ticket_looks_again_at_those_behind_it => super::scan_of_eight(),
    looking_again_moves_through_the_queue => super::slices_of_two(),
}

/// A `redis-server` speaking only TLS, with a password, and its CA certificate (PEM).
struct TlsRedis {
    child: std::process::Child,
    dir: std::path::PathBuf,
    port: u16,
    ca: Vec<u8>,
}

impl TlsRedis {
    fn start(password: &str) -> TlsRedis {
        let dir = std::env::temp_dir().join(format!("anonchat-redis-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1", "--tls-port"])
            .arg(port.to_string())
            .arg("--tls-cert-file")
            .arg(dir.join("cert.pem"))
            .arg("--tls-key-file")
            .arg(dir.join("key.pem"))
            .arg("--tls-ca-cert-file")
            .arg(dir.join("ca.pem"))
            .args(["--tls-auth-clients", "no", "--requirepass", password])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (.ci/run installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsRedis {
            child,
            dir,
            port,
            ca: ca.pem().into_bytes(),
        }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn redis_over_tls_with_a_password() {
    use anonchat_rendezvous::store::redis::RedisStore;
    let redis = TlsRedis::start("correct horse");
    let port = redis.port;
    let connect = |url: String, ca: Option<Vec<u8>>| async move {
        let store = RedisStore::connect_with_ca(&url, ca, StoreConfig::default()).await?;
        store.heartbeat("tls-instance", 1).await
    };
    connect(
        format!("rediss://:correct%20horse@127.0.0.1:{port}"),
        Some(redis.ca.clone()),
    )
    .await
    .expect("TLS, the right CA and the password");
    let refused = [
        (
            "a wrong password",
            format!("rediss://:wrong@127.0.0.1:{port}"),
            Some(redis.ca.clone()),
        ),
        (
            "no password",
            format!("rediss://127.0.0.1:{port}"),
            Some(redis.ca.clone()),
        ),
        (
            "a CA the system does not know",
            format!("rediss://:correct%20horse@127.0.0.1:{port}"),
            None,
        ),
        (
            "plain text to the TLS port",
            format!("redis://:correct%20horse@127.0.0.1:{port}"),
            None,
        ),
    ];
    for (what, url, ca) in refused {
        let got = tokio::time::timeout(Duration::from_secs(15), connect(url, ca)).await;
        assert!(matches!(got, Ok(Err(_))), "{what}: {got:?}");
    }
}
