//! Who a verified token says the person is, and the Confab user id that person gets.

use sha2::{Digest, Sha256};

use crate::config::ProviderConfig;

/// A person as a verified ID token describes them. They are identified by `(provider,
/// subject)` — never by e-mail, which can change hands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// The provider's id in the app's settings.
    pub provider: String,
    /// The provider's configured issuer (even when the token used an alias of it).
    pub issuer: String,
    /// The token's `sub`: the provider's stable id of the person (1 to 255 bytes).
    pub subject: String,
    /// The e-mail address, only when the provider verified it (or when the provider is set
    /// not to require verification).
    pub email: Option<String>,
    /// Display claims, as the provider sent them (non-empty); Confab's own limits on names
    /// and avatar URLs are applied by whoever stores them.
    pub name: Option<String>,
    /// Only an https URL.
    pub picture: Option<String>,
}

impl VerifiedIdentity {
    /// The Confab user id of this person when they are new; see [`user_id_for`].
    pub fn user_id(&self) -> String {
        derive(&self.provider, &self.issuer, &self.subject)
    }
}

/// The Confab user id of a new person who signs in through `provider` as `subject`:
/// `{provider id}:{h}` where `h` is the lowercase hex of the first 16 bytes (128 bits) of
/// SHA-256 over `"confab-oidc-user-v1"`, then the issuer, then the subject, each of those
/// three preceded by its length in bytes as a big-endian u64. It is deterministic (the same
/// person gets the same id on every node and every replay), reveals neither issuer nor
/// subject, at most 32 + 1 + 32 = 65 characters of the user-id charset (`a-z0-9_-:`).
pub fn user_id_for(provider: &ProviderConfig, subject: &str) -> String {
    derive(&provider.id, &provider.issuer, subject)
}

fn derive(provider_id: &str, issuer: &str, subject: &str) -> String {
    let mut h = Sha256::new();
    for part in ["confab-oidc-user-v1", issuer, subject] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let mut id = String::with_capacity(provider_id.len() + 33);
    id.push_str(provider_id);
    id.push(':');
    for b in &digest[..16] {
        id.push(char::from(HEX[usize::from(b >> 4)]));
        id.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    id
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_deterministic_fit_the_charset_and_separate_issuers() {
        let g = ProviderConfig::google(vec!["c".into()]);
        let a = user_id_for(&g, "110169484474386276334");
        assert_eq!(a, user_id_for(&g, "110169484474386276334"));
        assert!(a.starts_with("google:"));
        assert_eq!(a.len(), "google:".len() + 32);
        assert!(a.len() <= 128);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-@+:".contains(c))
        );
        assert_ne!(a, user_id_for(&g, "110169484474386276335"));
        let mut other = g.clone();
        other.issuer = "https://login.example.com".into();
        assert_ne!(a, user_id_for(&other, "110169484474386276334"));
        // The lengths keep ("ab", "c") and ("a", "bc") apart.
        assert_ne!(derive("p", "ab", "c"), derive("p", "a", "bc"));
        // Pinned: changing the derivation would give existing people new accounts.
        // (Computed independently: Python's hashlib over the same framing.)
        assert_eq!(
            derive("google", "https://accounts.google.com", "1"),
            "google:789dac2253325f03087e971d54f79073"
        );
    }
}
