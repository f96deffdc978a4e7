//! The head-turn challenges handed out and not yet answered, in memory: each one random steps
//! bound to one device key, single-use (an answer takes it, whatever the outcome) and gone after
//! its time. Nothing about the person is kept. Time is a parameter, so expiry is a plain test.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anonchat_protocol::verify::Step;
use rand::Rng;

/// Why an answer has no challenge to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    #[error("unknown or used challenge, or one given to another device; ask for a new one")]
    Unknown,
    #[error("the challenge expired; ask for a new one and answer within a minute")]
    Expired,
    #[error("too many challenges are open; try again in a moment")]
    Full,
    #[error("challenges cannot be kept right now; try again in a moment")]
    Unavailable,
}

/// The steps of a new challenge: left and right in a random order, unless `pinned` gives them.
pub fn steps(pinned: Option<&[Step]>, rng: &mut impl Rng) -> Vec<Step> {
    match pinned {
        Some(steps) => steps.to_vec(),
        None if rng.r#gen::<bool>() => vec![Step::Left, Step::Right],
        None => vec![Step::Right, Step::Left],
    }
}

/// A new challenge id: 128 random bits.
pub fn new_id(rng: &mut impl Rng) -> String {
    format!("{:032x}", rng.r#gen::<u128>())
}

struct Open {
    key: [u8; 32],
    steps: Vec<Step>,
    expires: Instant,
}

/// Challenges not yet answered, at most `capacity` of them.
pub struct Challenges {
    open: HashMap<String, Open>,
    ttl: Duration,
    capacity: usize,
}

impl Challenges {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Challenges {
            open: HashMap::new(),
            ttl,
            capacity,
        }
    }

    /// A new challenge with `steps` for `key`: its id.
    pub fn issue(
        &mut self,
        key: [u8; 32],
        steps: Vec<Step>,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Result<String, ChallengeError> {
        if self.open.len() >= self.capacity {
            self.open.retain(|_, c| c.expires > now);
            if self.open.len() >= self.capacity {
                return Err(ChallengeError::Full);
            }
        }
        let id = new_id(rng);
        self.open.insert(
            id.clone(),
            Open {
                key,
                steps,
                expires: now + self.ttl,
            },
        );
        Ok(id)
    }

    /// Takes challenge `id` for an answer from `key`: its steps. The challenge is gone after
    /// this whatever it returns, so an id can be tried once.
    pub fn take(
        &mut self,
        id: &str,
        key: &[u8; 32],
        now: Instant,
    ) -> Result<Vec<Step>, ChallengeError> {
        let open = self.open.remove(id).ok_or(ChallengeError::Unknown)?;
        if open.key != *key {
            return Err(ChallengeError::Unknown);
        }
        if now >= open.expires {
            return Err(ChallengeError::Expired);
        }
        Ok(open.steps)
    }

    /// Challenges open now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn a_challenge_is_answered_once_by_its_own_key_within_its_time() {
        let mut c = Challenges::new(TTL, 10);
        let mut rng = rand::thread_rng();
        let t0 = Instant::now();
        let issued = steps(None, &mut rng);
        assert_eq!(issued.len(), 2);
        assert_ne!(issued[0], issued[1], "one turn each way");
        let id = c.issue([1; 32], issued.clone(), t0, &mut rng).unwrap();
        assert_eq!(c.take(&id, &[1; 32], t0 + TTL / 2), Ok(issued));
        assert_eq!(
            c.take(&id, &[1; 32], t0),
            Err(ChallengeError::Unknown),
            "used"
        );

        let id = c
            .issue([1; 32], steps(None, &mut rng), t0, &mut rng)
            .unwrap();
        assert_eq!(
            c.take(&id, &[2; 32], t0),
            Err(ChallengeError::Unknown),
            "another key"
        );
        assert_eq!(
            c.take(&id, &[1; 32], t0),
            Err(ChallengeError::Unknown),
            "and it is gone"
        );

        let id = c
            .issue([1; 32], steps(None, &mut rng), t0, &mut rng)
            .unwrap();
        assert_eq!(
            c.take(&id, &[1; 32], t0 + TTL),
            Err(ChallengeError::Expired)
        );
        assert!(c.is_empty());
    }

    #[test]
    fn pinned_steps_are_given_as_pinned() {
        let mut rng = rand::thread_rng();
        for _ in 0..8 {
            let pinned = steps(Some(&[Step::Right, Step::Left]), &mut rng);
            assert_eq!(pinned, [Step::Right, Step::Left]);
        }
    }

    #[test]
    fn both_orders_come_up_and_ids_do_not_repeat() {
        let mut c = Challenges::new(TTL, 1000);
        let mut rng = rand::thread_rng();
        let now = Instant::now();
        let issued: Vec<_> = (0..200)
            .map(|_| {
                let s = steps(None, &mut rng);
                c.issue([0; 32], s.clone(), now, &mut rng).unwrap();
                s
            })
            .collect();
        let left_first = issued.iter().filter(|s| s[0] == Step::Left).count();
        assert!(
            (40..=160).contains(&left_first),
            "{left_first} of 200 start left"
        );
        assert_eq!(c.len(), 200, "200 distinct ids");
    }

    #[test]
    fn a_full_store_makes_room_from_expired_challenges_only() {
        let mut c = Challenges::new(TTL, 2);
        let mut rng = rand::thread_rng();
        let t0 = Instant::now();
        c.issue([0; 32], vec![Step::Left], t0, &mut rng).unwrap();
        c.issue([0; 32], vec![Step::Left], t0, &mut rng).unwrap();
        assert_eq!(
            c.issue([0; 32], vec![Step::Left], t0, &mut rng),
            Err(ChallengeError::Full)
        );
        assert!(
            c.issue([0; 32], vec![Step::Left], t0 + TTL, &mut rng)
                .is_ok(),
            "the expired ones made room"
        );
        assert_eq!(c.len(), 1);
    }
}
