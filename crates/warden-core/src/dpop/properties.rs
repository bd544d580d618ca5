//! Properties of the DPoP rules: one key has one thumbprint, `htu` normalisation forgives
//! exactly what RFC 3986 calls equivalent, and a nonce lives one to two slots.

use proptest::prelude::*;
use serde_json::Value;

use super::*;

/// A base64url value, as JWK members are.
fn b64url() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,64}"
}

/// A JWK of one of the three key types, as its members, required ones first.
fn jwk_members() -> impl Strategy<Value = Vec<(String, String)>> {
    let ec = (b64url(), b64url()).prop_map(|(x, y)| {
        vec![
            ("crv", "P-256".to_owned()),
            ("kty", "EC".into()),
            ("x", x),
            ("y", y),
        ]
    });
    let rsa =
        (b64url(), b64url()).prop_map(|(e, n)| vec![("e", e), ("kty", "RSA".to_owned()), ("n", n)]);
    let okp = b64url().prop_map(|x| {
        vec![
            ("crv", "Ed25519".to_owned()),
            ("kty", "OKP".into()),
            ("x", x),
        ]
    });
    prop_oneof![ec, rsa, okp].prop_map(|members| {
        members
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    })
}

/// JSON text of `members`, in the order given.
fn json_text(members: &[(String, String)]) -> String {
    let fields: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), Value::from(v.as_str())))
        .collect();
    format!("{{ {} }}", fields.join(" , "))
}

proptest! {
    #[test]
    fn the_thumbprint_hashes_the_required_members_in_order(members in jwk_members()) {
        // Written by hand in RFC 7638 §3 form: required members sorted, no whitespace.
        let canonical = format!(
            "{{{}}}",
            members
                .iter()
                .map(|(k, v)| format!("\"{k}\":\"{v}\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let jwk: Value = serde_json::from_str(&json_text(&members)).unwrap();
        prop_assert_eq!(jwk_thumbprint(&jwk), Ok(s256(&canonical)));
    }

    #[test]
    fn the_thumbprint_ignores_member_order_and_other_members(
        members in jwk_members(),
        extra in proptest::collection::vec(("[a-z]{1,8}", b64url()), 0..6),
        order in any::<proptest::sample::Index>(),
    ) {
        let plain: Value = serde_json::from_str(&json_text(&members)).unwrap();
        let mut all = members.clone();
        for (k, v) in extra {
            if !members.iter().any(|(m, _)| *m == k) {
                all.push((k, v));
            }
        }
        let by = order.index(all.len());
        all.rotate_left(by);
        all.reverse();
        let decorated: Value = serde_json::from_str(&json_text(&all)).unwrap();
        prop_assert_eq!(jwk_thumbprint(&decorated), jwk_thumbprint(&plain));
    }

    #[test]
    fn htu_forgives_case_default_port_query_and_fragment(
        host in "[a-z][a-z0-9]{0,10}\\.example",
        path in proptest::collection::vec("[A-Za-z0-9._~-]{1,8}", 0..4),
        https in any::<bool>(),
        upper in any::<bool>(),
        port in any::<bool>(),
        query in proptest::option::of("[a-z0-9=&]{0,10}"),
        fragment in proptest::option::of("[a-z0-9]{0,10}"),
    ) {
        let path: Vec<String> = path.into_iter().filter(|s| s != "." && s != "..").collect();
        let scheme = if https { "https" } else { "http" };
        let path = format!("/{}", path.join("/"));
        let request = format!("{scheme}://{host}{path}");
        let mut htu = format!(
            "{}://{}{}{path}",
            if upper { scheme.to_uppercase() } else { scheme.to_owned() },
            if upper { host.to_uppercase() } else { host.clone() },
            if port { if https { ":443" } else { ":80" } } else { "" },
        );
        if let Some(q) = query {
            htu.push('?');
            htu.push_str(&q);
        }
        if let Some(f) = fragment {
            htu.push('#');
            htu.push_str(&f);
        }
        prop_assert!(htu::same_target(&htu, &request), "{} vs {}", htu, request);
        prop_assert!(htu::same_target(&request, &htu));
        let other_path = format!("{request}x");
        prop_assert!(!htu::same_target(&htu, &other_path));
        let other_host = format!("{scheme}://x{host}{path}");
        prop_assert!(!htu::same_target(&htu, &other_host));
    }

    #[test]
    fn a_nonce_is_fresh_from_its_issue_for_one_to_two_slots(
        now in 0i64..4_000_000_000,
        slot_secs in 1i64..3_600,
        later in 0i64..10_000,
    ) {
        let key = NonceKey::new(b"a replica-shared nonce key");
        let nonce = issue_nonce(&key, now, slot_secs);
        let expires = (now.div_euclid(slot_secs) + 2) * slot_secs;
        prop_assert_eq!(nonce_is_fresh(&key, &nonce, now + later, slot_secs), now + later < expires);
        prop_assert!(expires - now > slot_secs && expires - now <= 2 * slot_secs);
        prop_assert!(!nonce_is_fresh(&NonceKey::new(b"another key"), &nonce, now, slot_secs));
    }
}
