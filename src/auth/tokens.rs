//! API token secrets: `rbt_<public id>_<secret>`. The public id finds the row; the secret is
//! stored only as its SHA-256 and compared in constant time. A token's secret has 256 random bits,
//! so a fast hash is enough (no password-stretching is needed for it).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const PREFIX: &str = "rbt_";

/// A freshly made token: what to show once, and what to store.
#[derive(Debug)]
pub struct NewSecret {
    /// The full token to hand to the person, once.
    pub token: String,
    /// The public id (stored, shown in lists).
    pub public_id: String,
    /// SHA-256 of the secret part, hex (stored).
    pub hash: String,
}

/// Makes a new token.
pub fn generate() -> NewSecret {
    let id: [u8; 8] = rand::random();
    let public_id = hex::encode(id);
    let secret = crate::web::session::random_token();
    NewSecret {
        token: format!("{PREFIX}{public_id}_{secret}"),
        hash: hash(&secret),
        public_id,
    }
}

/// The stored form of a secret.
pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a presented token into its public id and secret, if it has the right shape.
pub fn split(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit());
    let secret_ok = (32..=128).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((id, secret))
}

/// Whether a presented secret matches a stored hash, in constant time.
pub fn matches(secret: &str, stored_hash: &str) -> bool {
    bool::from(hash(secret).as_bytes().ct_eq(stored_hash.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_only_its_secret_matches() {
        let t = generate();
        let (id, secret) = split(&t.token).unwrap();
        assert_eq!(id, t.public_id);
        assert!(matches(secret, &t.hash));
        let other = generate();
        let (_, other_secret) = split(&other.token).unwrap();
        assert!(!matches(other_secret, &t.hash));
        assert!(!t.hash.contains(secret), "the stored form is not the secret");
    }

    #[test]
    fn malformed_tokens_are_not_split() {
        for bad in [
            "",
            "rbt_",
            "rbt_abc_def",
            "Bearer rbt_0011223344556677_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "rbt_001122334455667g_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "rbt_0011223344556677_short",
            "rbt_0011223344556677_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!",
        ] {
            assert!(split(bad).is_none(), "{bad}");
        }
    }
}
