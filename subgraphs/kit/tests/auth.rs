//! Token verification as every process does it, including the memory of tokens it
//! verified lately.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use shop_kit::auth::{AuthError, JwksSource, Role, SigningKey, TrustedIssuer, Verifier};

#[tokio::test]
async fn a_remembered_token_is_still_its_own_and_an_altered_one_is_checked_and_refused() {
    let key = SigningKey::generate().unwrap();
    let verifier = Verifier::new(vec![TrustedIssuer::new(
        "https://issuer.test",
        "shop",
        JwksSource::Inline(key.jwks()),
    )]);
    let mint = |user: &str, roles: &[Role]| {
        key.mint(
            "https://issuer.test",
            "shop",
            user,
            roles,
            Duration::from_secs(300),
        )
        .unwrap()
    };
    let ann = mint("ann", &[Role::Customer]);
    let bob = mint("bob", &[Role::Admin]);
    for _ in 0..3 {
        assert_eq!(verifier.verify(&ann).await.unwrap().user_id, "ann");
        let b = verifier.verify(&bob).await.unwrap();
        assert_eq!(
            (b.user_id.as_str(), b.roles.as_slice()),
            ("bob", &[Role::Admin][..])
        );
    }
    // Ann's claims with Bob's signature, and Ann's token with one signature byte
    // changed: neither is taken from memory.
    let (ann_body, _) = ann.rsplit_once('.').unwrap();
    let (_, bob_signature) = bob.rsplit_once('.').unwrap();
    let forged = format!("{ann_body}.{bob_signature}");
    assert!(matches!(
        verifier.verify(&forged).await,
        Err(AuthError::Invalid(_))
    ));
    let mut altered = ann.clone().into_bytes();
    let last = altered.len() - 2;
    altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
    let altered = String::from_utf8(altered).unwrap();
    assert!(verifier.verify(&altered).await.is_err());
    assert_eq!(verifier.verify(&ann).await.unwrap().user_id, "ann");
}
