//! Tokens per client address per day: each token is a new identity (its own bans, reports and
//! daily matches), so one address gets only so many a day. An IPv6 /64 is one address (one
//! home or phone is handed a whole /64). Days are UTC days; time is a parameter.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

const DAY: i64 = 86_400;
/// Addresses counted at once. Past it (a million tokens in a day) new addresses go uncounted
/// until midnight rather than the map growing without end; the per-minute limit still holds.
const MAX_CLIENTS: usize = 1_000_000;

/// The address a client is counted under: IPv4 as it is (also when mapped into IPv6), IPv6 by
/// its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Tokens issued today per client address, at most `limit` each.
pub struct Daily {
    limit: u32,
    day: i64,
    counts: HashMap<IpAddr, u32>,
}

impl Daily {
    /// `limit` 0 turns the limit off.
    pub fn new(limit: u32) -> Self {
        Daily {
            limit,
            day: 0,
            counts: HashMap::new(),
        }
    }

    fn roll(&mut self, now: i64) {
        let day = now.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            self.counts.clear();
        }
    }

    /// Takes one of today's tokens for `ip` before the work starts, so that requests in flight
    /// together cannot pass the limit; [`Daily::give_back`] returns it when no token came of
    /// it. If none is left, the seconds until tomorrow (UTC).
    pub fn take(&mut self, ip: IpAddr, now: i64) -> Result<(), u64> {
        if self.limit == 0 {
            return Ok(());
        }
        self.roll(now);
        let key = client_key(ip);
        let full = self.counts.len() >= MAX_CLIENTS;
        match self.counts.get_mut(&key) {
            Some(n) if *n >= self.limit => Err((DAY - now.rem_euclid(DAY)).max(1) as u64),
            Some(n) => {
                *n += 1;
                Ok(())
            }
            None if full => {
                tracing::warn!("the daily verification counts are full until midnight UTC");
                Ok(())
            }
            None => {
                self.counts.insert(key, 1);
                Ok(())
            }
        }
    }

    /// Returns a token taken by [`Daily::take`] (the verification was refused). A token taken
    /// yesterday is not returned: the day's counts are gone already.
    pub fn give_back(&mut self, ip: IpAddr, taken_at: i64) {
        if self.limit == 0 || taken_at.div_euclid(DAY) != self.day {
            return;
        }
        if let Some(n) = self.counts.get_mut(&client_key(ip)) {
            *n = n.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_slash_64_is_one_client_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn the_limit_holds_for_the_day_and_lifts_at_midnight_utc() {
        let mut d = Daily::new(2);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        let noon = 20_000 * DAY + DAY / 2;
        // Two in flight at once take both of the day's tokens: a third waits even before
        // either has finished.
        assert_eq!(d.take(ip, noon), Ok(()));
        assert_eq!(d.take(ip, noon), Ok(()));
        assert_eq!(d.take(neighbour, noon), Err((DAY / 2) as u64), "same /64");
        // One of them was refused: its token comes back.
        d.give_back(ip, noon);
        assert_eq!(d.take(neighbour, noon), Ok(()));
        assert_eq!(d.take(ip, noon), Err((DAY / 2) as u64));
        assert_eq!(d.take("192.0.2.1".parse().unwrap(), noon), Ok(()));
        // A token taken before midnight and given back after it changes nothing today.
        assert_eq!(d.take(ip, noon + DAY / 2), Ok(()), "a new day");
        d.give_back(ip, noon);
        assert_eq!(d.take(ip, noon + DAY / 2), Ok(()));
        assert_eq!(d.take(ip, noon + DAY / 2), Err(DAY as u64));
        assert_eq!(Daily::new(0).take(ip, noon), Ok(()), "0 is off");
    }
}
