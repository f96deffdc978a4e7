//! `lua/rules.lua` mirrors [`crate::matcher`]: random queues, with random blocks, last
//! partners, bans, daily counts and dead instances, go through `matcher::choose` and through
//! `join.lua` on a real Redis, and both must make the same choice and drop the same tickets.

use std::collections::{HashMap, HashSet};

use ::redis::AsyncCommands;
use anonchat_protocol::rendezvous::{Transport, Want};
use anonchat_protocol::token::Gender;
use anonchat_testkit::RedisServer;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;

use super::redis::RedisStore;
use super::{JoinOutcome, Store, StoreConfig, Ticket, day, keys};
use crate::matcher::strategy::{gender, want};
use crate::matcher::{self, Admission, Seat, Waiting};

const LIVE: &str = "live-instance";
const DEAD: &str = "dead-instance";
const LIMIT: u32 = 3;
const POOL: [&str; 4] = ["jazz", "chess", "go", "tea"];

/// One waiting ticket, and the facts about its device.
#[derive(Debug, Clone)]
struct Queued {
    gender: Gender,
    want: Want,
    interests: Vec<String>,
    /// Milliseconds after the ticket before it.
    gap_ms: u64,
    /// A ticket of the joiner's own device.
    mine: bool,
    alive: bool,
    banned: bool,
    used: u32,
    blocks_me: bool,
    blocked_by_me: bool,
    /// The joiner was this device's last partner.
    had_me: bool,
}

#[derive(Debug, Clone)]
struct Case {
    gender: Gender,
    want: Want,
    interests: Vec<String>,
    /// What is left of the joiner's ban, if one runs.
    ban_ms: Option<u64>,
    used: u32,
    /// Index of the waiting ticket whose device was the joiner's last partner.
    last: Option<usize>,
    queue: Vec<Queued>,
    scan: usize,
}

fn interests() -> impl Strategy<Value = Vec<String>> {
    proptest::sample::subsequence(POOL.to_vec(), 0..=POOL.len())
        .prop_map(|v| v.into_iter().map(String::from).collect())
}

/// Mostly plain tickets; each fact is rare enough that scans reach past it.
fn queued() -> impl Strategy<Value = Queued> {
    let rare = || proptest::bool::weighted(0.1);
    (
        (gender(), want(), interests(), 0u64..700),
        (rare(), rare(), rare(), 0..=LIMIT),
        (rare(), rare(), rare()),
    )
        .prop_map(
            |((gender, want, interests, gap_ms), (mine, dead, banned, used), (a, b, c))| Queued {
                gender,
                want,
                interests,
                gap_ms,
                mine,
                alive: !dead,
                banned,
                used,
                blocks_me: a,
                blocked_by_me: b,
                had_me: c,
            },
        )
}

fn case() -> impl Strategy<Value = Case> {
    (
        (gender(), want(), interests()),
        (
            proptest::option::weighted(0.05, 1u64..5000),
            proptest::sample::select(vec![0, 0, 0, 1, LIMIT]),
        ),
        proptest::collection::vec(queued(), 0..24),
        1usize..30,
        proptest::option::weighted(0.2, 0usize..24),
    )
        .prop_map(
            |((gender, want, interests), (ban_ms, used), queue, scan, last)| Case {
                gender,
                want,
                interests,
                ban_ms,
                used,
                last: last.filter(|&i| i < queue.len()),
                queue,
                scan,
            },
        )
}

fn pseudonym(case: &Case, i: usize) -> String {
    if case.queue[i].mine {
        "me".into()
    } else {
        format!("w{i}")
    }
}

fn ticket(session: &str, pseudonym: &str, instance: &str, q: (Gender, Want, &[String])) -> Ticket {
    Ticket {
        session: session.into(),
        instance: instance.into(),
        pseudonym: pseudonym.into(),
        gender: q.0,
        want: q.1,
        interests: q.2.to_vec(),
        nickname: "n".into(),
        bio: String::new(),
        transports: vec![Transport::Webrtc],
    }
}

/// What the matcher says: `Err` with the refusal, or the partner's session and the sessions
/// left waiting (the joiner's own, if queued, last).
fn expected(case: &Case) -> Result<(Option<String>, Vec<String>), Admission> {
    match matcher::admission(case.ban_ms, case.used, LIMIT) {
        Admission::Welcome { daily_remaining } if daily_remaining > 0 => {}
        refused => return Err(refused),
    }
    let names: Vec<String> = (0..case.queue.len()).map(|i| pseudonym(case, i)).collect();
    // Every fact is the device's: a ticket of the joiner's own device has the joiner's.
    let mut blocked: HashMap<&str, HashSet<String>> = HashMap::new();
    for (i, q) in case.queue.iter().enumerate().filter(|(_, q)| !q.mine) {
        if q.blocks_me {
            blocked.entry(&names[i]).or_default().insert("me".into());
        }
        if q.blocked_by_me {
            blocked.entry("me").or_default().insert(names[i].clone());
        }
    }
    let none = HashSet::new();
    let my_last = case.last.map(|i| names[i].as_str());
    let last = |i: usize| match case.queue[i].mine {
        true => my_last,
        false => case.queue[i].had_me.then_some("me"),
    };
    let me = Seat {
        pseudonym: "me",
        gender: case.gender,
        want: case.want,
        interests: &case.interests,
        last_partner: my_last,
        blocked: blocked.get("me").unwrap_or(&none),
    };
    let mut joined = 0;
    let waiting: Vec<Waiting> = case
        .queue
        .iter()
        .enumerate()
        .map(|(i, q)| {
            joined += q.gap_ms;
            Waiting {
                joined_ms: joined,
                seat: Seat {
                    pseudonym: &names[i],
                    gender: q.gender,
                    want: q.want,
                    interests: &q.interests,
                    last_partner: last(i),
                    blocked: blocked.get(names[i].as_str()).unwrap_or(&none),
                },
                alive: q.alive,
                banned: q.banned && !q.mine,
                exhausted: if q.mine { case.used } else { q.used } >= LIMIT,
            }
        })
        .collect();
    let choice = matcher::choose(&me, waiting, case.scan);
    let partner = choice.partner.map(|i| format!("s{i}"));
    let mut left: Vec<String> = (0..case.queue.len())
        .filter(|i| Some(*i) != choice.partner && !choice.dropped.contains(i))
        .map(|i| format!("s{i}"))
        .collect();
    if partner.is_none() {
        left.push("joiner".into());
    }
    Ok((partner, left))
}

/// What `join.lua` does with the same queue, on a real Redis.
async fn actual(
    redis: &RedisServer,
    case: &Case,
) -> Result<(Option<String>, Vec<String>), Admission> {
    let base = StoreConfig {
        daily_match_limit: LIMIT,
        ..StoreConfig::default()
    };
    // A store that looks at nobody queues every ticket as it comes.
    let builder = RedisStore::connect(
        &redis.url,
        StoreConfig {
            scan: 0,
            ..base.clone()
        },
    )
    .await
    .unwrap();
    let store = RedisStore::connect(
        &redis.url,
        StoreConfig {
            scan: case.scan,
            ..base
        },
    )
    .await
    .unwrap();
    builder.reset().await.unwrap();
    builder.heartbeat(LIVE, 0).await.unwrap();
    let mut inbox = builder.subscribe(LIVE).await.unwrap();
    assert_eq!(inbox.recv().await, Some(crate::store::Inbox::Listening));
    let mut joined = 1_000_000_000; // ms, so that the day is a fixed one
    let today = day(joined as i64 / 1000);
    for (i, q) in case.queue.iter().enumerate() {
        joined += q.gap_ms;
        let instance = if q.alive { LIVE } else { DEAD };
        let t = ticket(
            &format!("s{i}"),
            &pseudonym(case, i),
            instance,
            (q.gender, q.want, &q.interests),
        );
        let queued = builder.join(&t, joined).await.unwrap();
        assert!(matches!(queued, JoinOutcome::Queued { .. }), "{queued:?}");
    }
    let c = ::redis::Client::open(redis.url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let set = |key: String, value: String| {
        let mut c = c.clone();
        async move {
            let _: () = c.set_ex(key, value, 600).await.unwrap();
        }
    };
    for (i, q) in case.queue.iter().enumerate().filter(|(_, q)| !q.mine) {
        let name = pseudonym(case, i);
        if q.banned {
            set(keys::ban(&name), "1".into()).await;
        }
        set(keys::count(&name, today), q.used.to_string()).await;
        if q.had_me {
            set(keys::last(&name), "me".into()).await;
        }
        if q.blocks_me {
            store.block(&name, "me").await.unwrap();
        }
        if q.blocked_by_me {
            store.block("me", &name).await.unwrap();
        }
    }
    if let Some(i) = case.last {
        set(keys::last("me"), pseudonym(case, i)).await;
    }
    if let Some(ms) = case.ban_ms {
        let mut c = c.clone();
        let _: () = c.pset_ex(keys::ban("me"), "1", ms).await.unwrap();
    }
    set(keys::count("me", today), case.used.to_string()).await;
    let me = ticket(
        "joiner",
        "me",
        LIVE,
        (case.gender, case.want, &case.interests),
    );
    let partner = match store.join(&me, joined).await.unwrap() {
        JoinOutcome::Matched { partner, .. } => Some(partner.session),
        JoinOutcome::Queued { .. } => None,
        JoinOutcome::Banned { retry_after } => return Err(Admission::Banned { retry_after }),
        JoinOutcome::DailyLimit => {
            return Err(Admission::Welcome { daily_remaining: 0 });
        }
    };
    let left: Vec<String> = c.clone().zrange(keys::queue(), 0, -1).await.unwrap();
    Ok((partner, left))
}

#[test]
fn join_lua_chooses_as_the_matcher_does() {
    // One Redis for every case, dropped (and stopped) at the end, which a static would not be.
    let redis = RedisServer::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 200,
        ..ProptestConfig::default()
    });
    let result = runner.run(&case(), |case| {
        let mut want = expected(&case);
        let mut got = rt.block_on(actual(&redis, &case));
        // The ban's seconds are Redis' own count down (a few ms may have passed): only the
        // refusal is compared.
        for r in [&mut want, &mut got] {
            if let Err(Admission::Banned { retry_after }) = r {
                *retry_after = 0;
            }
        }
        prop_assert_eq!(got, want);
        Ok(())
    });
    if let Err(e) = result {
        panic!("join.lua and the matcher disagree: {e}");
    }
}
