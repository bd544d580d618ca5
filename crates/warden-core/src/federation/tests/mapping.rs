use serde_json::json;

use super::obj;
use crate::federation::*;

// === Groups ===

fn group_map(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

#[test]
fn groups_come_from_a_dotted_path_and_unmapped_ones_are_dropped() {
    let claims = obj(json!({
        "realm_access": {"roles": ["mcp-admins", "offline_access", 7, null, "eng", "eng"]},
    }));
    let map = group_map(&[
        ("mcp-admins", "admins"),
        ("eng", "engineering"),
        ("eng", "builders"),
        ("ops", "operators"),
    ]);
    assert_eq!(
        map_groups(&claims, "realm_access.roles", &map),
        ["admins", "builders", "engineering"]
    );
    assert!(map_groups(&claims, "realm_access.missing", &map).is_empty());
    assert!(map_groups(&claims, "realm_access", &map).is_empty());
    assert!(map_groups(&claims, "groups", &map).is_empty());
}

#[test]
fn a_single_string_and_a_namespaced_claim_are_groups_too() {
    let claims = obj(json!({
        "groups": "eng",
        "https://example.com/groups": ["ops"],
    }));
    let map = group_map(&[
        ("eng", "engineering"),
        ("ops", "operators"),
        ("ENG", "shouty"),
    ]);
    assert_eq!(map_groups(&claims, "groups", &map), ["engineering"]);
    assert_eq!(
        map_groups(&claims, "https://example.com/groups", &map),
        ["operators"]
    );
    assert!(map_groups(&obj(json!({"groups": 3})), "groups", &map).is_empty());
    assert!(map_groups(&claims, "groups", &[]).is_empty());
}

#[test]
fn a_group_mapping_parses_from_text() {
    let ok = |s: &str| parse_group_mapping(s).unwrap();
    assert_eq!(ok("eng=engineering"), ("eng".into(), "engineering".into()));
    assert_eq!(
        ok(" Platform Team = platform "),
        ("Platform Team".into(), "platform".into())
    );
    assert_eq!(
        ok("CN=Admins,OU=Groups,DC=corp=admins"),
        ("CN=Admins,OU=Groups,DC=corp".into(), "admins".into())
    );
    assert_eq!(
        ok(&format!("g={}", "w".repeat(MAX_GROUP_NAME_LEN))).1.len(),
        64
    );
    for (text, err) in [
        ("engineering", GroupMapError::NoSeparator),
        ("", GroupMapError::NoSeparator),
        ("=engineering", GroupMapError::EmptyIdpGroup),
        ("  =engineering", GroupMapError::EmptyIdpGroup),
        ("eng\u{7}=engineering", GroupMapError::InvalidIdpGroup),
        ("eng=", GroupMapError::EmptyWardenGroup),
        ("eng= ", GroupMapError::EmptyWardenGroup),
        ("eng=two words", GroupMapError::InvalidWardenGroup),
        ("eng=tab\there", GroupMapError::InvalidWardenGroup),
    ] {
        assert_eq!(parse_group_mapping(text), Err(err), "{text:?}");
    }
    let long = format!("g={}", "w".repeat(MAX_GROUP_NAME_LEN + 1));
    assert_eq!(
        parse_group_mapping(&long),
        Err(GroupMapError::InvalidWardenGroup)
    );
    let long = format!("{}=w", "g".repeat(1025));
    assert_eq!(
        parse_group_mapping(&long),
        Err(GroupMapError::InvalidIdpGroup)
    );
    assert!(GroupMapError::NoSeparator
        .to_string()
        .contains("IDP_GROUP=WARDEN_GROUP"));
}

// === Email routing ===

#[test]
fn an_email_domain_routes_to_its_provider_case_insensitively() {
    let corp = vec!["example.com".to_owned(), "Example.ORG".to_owned()];
    let partner = vec!["partner.example".to_owned()];
    let candidates: Vec<(&str, &[String])> = vec![("corp", &corp), ("partner", &partner)];
    for (email, idp) in [
        ("jane@example.com", Some("corp")),
        ("Jane@EXAMPLE.COM", Some("corp")),
        ("x@example.org", Some("corp")),
        ("bob@Partner.Example", Some("partner")),
        ("\"a@b\"@partner.example", Some("partner")),
        ("jane@sub.example.com", None),
        ("jane@example.com.evil", None),
        ("jane@other.example", None),
    ] {
        assert_eq!(idp_for_email(email, &candidates), idp, "{email}");
    }
}

#[test]
fn a_malformed_or_ambiguous_email_routes_nowhere() {
    let corp = vec!["example.com".to_owned()];
    let candidates: Vec<(&str, &[String])> = vec![("corp", &corp)];
    for email in [
        "",
        "example.com",
        "@example.com",
        "jane@",
        "jane@.example.com",
        "jane@example.com.",
        "jane doe@example.com",
        "jane@example.com ",
        "jane@exa\nmple.com",
    ] {
        assert_eq!(idp_for_email(email, &candidates), None, "{email:?}");
    }
    let also = vec!["EXAMPLE.com".to_owned()];
    let both: Vec<(&str, &[String])> = vec![("corp", &corp), ("shadow", &also)];
    assert_eq!(idp_for_email("jane@example.com", &both), None);
}
