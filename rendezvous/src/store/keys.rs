//! Every Redis key the store uses, in one place.
//!
//! All of them share one hash tag (`{ac}`), so every script runs on one Redis Cluster slot. The
//! Lua scripts spell no key of their own: they build each one from the names and prefixes
//! [`script_args`] hands them, under the names of the functions here (`ban`, `ticket`, …).

const QUEUE: &str = "{ac}:queue";
/// The arrival sequence (two joins in one millisecond keep their order).
const SEQ: &str = "{ac}:seq";
const TICKET: &str = "{ac}:t:";
const INSTANCE: &str = "{ac}:inst:";
const INSTANCES: &str = "{ac}:instances";
const BAN: &str = "{ac}:ban:";
const COUNT: &str = "{ac}:count:";
const LAST: &str = "{ac}:last:";
const BLOCKS: &str = "{ac}:blocks:";
const REPORTS: &str = "{ac}:reports:";
const LIVE: &str = "{ac}:live:";
const CHANNEL: &str = "{ac}:ch:";
/// A waiting ticket a partner took moments ago (see `Store::rejoin`).
const TAKEN: &str = "{ac}:taken:";

/// What every key starts with (to find them all, for an admin reset).
pub const PREFIX: &str = "{ac}:";

/// The waiting tickets: a sorted set of sessions, ordered by a strict arrival sequence.
pub fn queue() -> &'static str {
    QUEUE
}

/// A waiting session's ticket: a hash the join script writes and reads.
pub fn ticket(session: &str) -> String {
    format!("{TICKET}{session}")
}

/// An instance's heartbeat (its number of connected clients).
pub fn instance(instance: &str) -> String {
    format!("{INSTANCE}{instance}")
}

/// The instances that have sent a heartbeat (for the stats).
pub fn instances() -> &'static str {
    INSTANCES
}

/// A running ban of a device.
pub fn ban(pseudonym: &str) -> String {
    format!("{BAN}{pseudonym}")
}

/// A device's matches on one UTC day.
pub fn count(pseudonym: &str, day: i64) -> String {
    format!("{COUNT}{pseudonym}{}", count_suffix(day))
}

/// What follows the pseudonym in [`count`]: the join script gets it ready-made.
pub fn count_suffix(day: i64) -> String {
    format!(":{day}")
}

/// A device's previous partner (no immediate rematch); only the join script writes it.
#[cfg(test)]
pub fn last(pseudonym: &str) -> String {
    format!("{LAST}{pseudonym}")
}

/// Whom a device has blocked.
pub fn blocks(pseudonym: &str) -> String {
    format!("{BLOCKS}{pseudonym}")
}

/// Who has reported a device.
pub fn reports(pseudonym: &str) -> String {
    format!("{REPORTS}{pseudonym}")
}

/// A device's one live session (`instance session`).
pub fn live(pseudonym: &str) -> String {
    format!("{LIVE}{pseudonym}")
}

/// An instance's pub/sub channel.
pub fn channel(instance: &str) -> String {
    format!("{CHANNEL}{instance}")
}

/// The key names and prefixes, as name/value pairs for a script's arguments; a per-device key
/// is the prefix followed by the pseudonym or session (a day's count then [`count_suffix`]).
pub fn script_args() -> [(&'static str, &'static str); 12] {
    [
        ("queue", QUEUE),
        ("seq", SEQ),
        ("ticket", TICKET),
        ("instance", INSTANCE),
        ("instances", INSTANCES),
        ("ban", BAN),
        ("count", COUNT),
        ("last", LAST),
        ("blocks", BLOCKS),
        ("reports", REPORTS),
        ("channel", CHANNEL),
        ("taken", TAKEN),
    ]
}
