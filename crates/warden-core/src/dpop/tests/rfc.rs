//! The examples of RFC 7638 and RFC 9449, verified as published.

use super::*;

/// RFC 9449 Figure 2: a proof for a token request.
const TOKEN_REQUEST_PROOF: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
    "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
    "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
    "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIj",
    "oiUE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwia",
    "WF0IjoxNTYyMjYyNjE2fQ.2-GxA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg",
    "4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg",
);

/// RFC 9449 Figure 13: a proof for a protected resource request, with `ath`.
const RESOURCE_PROOF: &str = concat!(
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6Ik",
    "VDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCR",
    "nMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JE",
    "QSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIj",
    "oiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJjZS5leGFtcGxlLm9yZy9wcm90ZWN0Z",
    "WRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNF",
    "c05yV0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71E",
    "OptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6Fy1dqd-jfxSYoMxhAJpLjA",
);

/// RFC 9449 Figure 6: the access token the resource proof is for.
const RFC_ACCESS_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";

/// RFC 9449 Figure 9: the thumbprint of the examples' key.
const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

#[test]
fn rfc7638_section_3_1_thumbprint() {
    let jwk = json!({
        "kty": "RSA",
        "n": concat!(
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L",
            "6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4Qy",
            "Q5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbI",
            "SD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-",
            "kEgU8awapJzKnqDKgw",
        ),
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    });
    assert_eq!(
        jwk_thumbprint(&jwk).unwrap(),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn thumbprints_need_the_required_members_of_a_known_kty() {
    let ec = jwk_of(es256());
    for name in ["kty", "crv", "x", "y"] {
        assert_eq!(
            jwk_thumbprint(&without(ec.clone(), name)),
            Err(DpopError::BadJwk),
            "{name}"
        );
    }
    assert_eq!(
        jwk_thumbprint(&with(ec, "x", json!(42))),
        Err(DpopError::BadJwk)
    );
    assert_eq!(
        jwk_thumbprint(&json!({ "kty": "oct", "k": "c2VjcmV0" })),
        Err(DpopError::BadJwk)
    );
    assert_eq!(jwk_thumbprint(&json!("EC")), Err(DpopError::BadJwk));
}

#[test]
fn rfc9449_token_request_proof_verifies() {
    let rule = ProofRule {
        uri: "https://server.example.com/token",
        algorithms: &["ES256"],
        expected_jkt: Some(RFC_JKT),
        ..token_rule()
    };
    let got = verify_proof(TOKEN_REQUEST_PROOF, &rule, 1_562_262_616).unwrap();
    assert_eq!(got.jkt, RFC_JKT);
    assert_eq!(got.jti, "-BwC3ESc6acc2lTc");
    assert_eq!(got.iat, 1_562_262_616);
}

#[test]
fn rfc9449_resource_proof_verifies_with_its_token_only() {
    assert_eq!(
        s256(RFC_ACCESS_TOKEN),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
    let rule = ProofRule {
        method: "GET",
        uri: "https://resource.example.org/protectedresource",
        access_token: Some(RFC_ACCESS_TOKEN),
        algorithms: &["ES256"],
        ..token_rule()
    };
    let now = 1_562_262_618;
    let got = verify_proof(RESOURCE_PROOF, &rule, now).unwrap();
    assert_eq!(got.jkt, RFC_JKT);
    let cnf = json!({ "jkt": RFC_JKT });
    assert_eq!(check_binding(Some(&cnf), Some(&got.jkt), true), Ok(()));
    let other_token = ProofRule {
        access_token: Some(ACCESS_TOKEN),
        ..rule
    };
    assert_eq!(
        verify_proof(RESOURCE_PROOF, &other_token, now),
        Err(DpopError::AthMismatch)
    );
    // A proof for the resource is not one for the token endpoint, and not a day later.
    let token_endpoint = ProofRule {
        uri: "https://server.example.com/token",
        method: "POST",
        ..rule
    };
    assert_eq!(
        verify_proof(RESOURCE_PROOF, &token_endpoint, now),
        Err(DpopError::WrongMethod)
    );
    assert_eq!(
        verify_proof(RESOURCE_PROOF, &rule, now + 86_400),
        Err(DpopError::TooOld)
    );
}
