//! Profile rules (DESIGN.md §5): nickname 3–24 characters, bio 10–140, at most 5 emoji, no
//! control characters, no profanity. Errors name the field, so a client can show them in place.

use rustrict::CensorStr;

use anonchat_protocol::rendezvous::limits::{BIO_CHARS, MAX_EMOJI, NICKNAME_CHARS};
use anonchat_protocol::rendezvous::{Profile, count_emoji};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ProfileError {
    pub field: &'static str,
    pub reason: String,
}

/// Checks a profile; returns it with surrounding whitespace trimmed.
pub fn validate(profile: &Profile) -> Result<Profile, ProfileError> {
    let nickname = check("nickname", &profile.nickname, NICKNAME_CHARS)?;
    let bio = check("bio", &profile.bio, BIO_CHARS)?;
    let emoji = count_emoji(&nickname) + count_emoji(&bio);
    if emoji > MAX_EMOJI {
        let field = if count_emoji(&nickname) > MAX_EMOJI {
            "nickname"
        } else {
            "bio"
        };
        return Err(ProfileError {
            field,
            reason: format!("at most {MAX_EMOJI} emoji in all ({emoji} given)"),
        });
    }
    Ok(Profile { nickname, bio })
}

fn check(
    field: &'static str,
    value: &str,
    chars: std::ops::RangeInclusive<usize>,
) -> Result<String, ProfileError> {
    let value = value.trim();
    let err = |reason: String| ProfileError { field, reason };
    if value.chars().any(|c| c.is_control() || is_invisible(c)) {
        return Err(err("control or invisible characters are not allowed".into()));
    }
    let n = value.chars().count();
    if !chars.contains(&n) {
        return Err(err(format!(
            "{} to {} characters ({n} given)",
            chars.start(),
            chars.end()
        )));
    }
    if value.is_inappropriate() {
        return Err(err("please keep it friendly: no profanity".into()));
    }
    Ok(value.to_owned())
}

/// Zero-width and direction-override characters, which hide or reorder text.
fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(nickname: &str, bio: &str) -> Profile {
        Profile {
            nickname: nickname.into(),
            bio: bio.into(),
        }
    }

    #[test]
    fn good_profiles_pass_trimmed() {
        let ok = validate(&p("  Ann  ", "I like jazz and long walks 🎷")).unwrap();
        assert_eq!(ok.nickname, "Ann");
        validate(&p("Zoë", "Bonjour à tous, ça va ?")).unwrap();
    }

    #[test]
    fn each_rule_names_its_field() {
        let field = |n: &str, b: &str| validate(&p(n, b)).unwrap_err().field;
        assert_eq!(field("ab", "a long enough bio"), "nickname");
        assert_eq!(field(&"x".repeat(25), "a long enough bio"), "nickname");
        assert_eq!(field("Ann", "too short"), "bio");
        assert_eq!(field("Ann", &"y".repeat(141)), "bio");
        assert_eq!(field("An\u{7}n", "a long enough bio"), "nickname");
        assert_eq!(field("Ann", "hello\u{202E}there friend"), "bio");
        assert_eq!(field("Ann", "😀😀😀😀😀😀 hello there"), "bio");
        assert_eq!(field("fuck you", "a long enough bio"), "nickname");
        assert_eq!(field("Ann", "you are all shit heads"), "bio");
    }
}
