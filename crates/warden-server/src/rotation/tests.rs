use super::*;

const DAY: i64 = 86_400;

fn settings() -> KeySettings {
    KeySettings {
        rotation_interval: 30 * DAY,
        publish_ahead: DAY,
    }
}

fn key(kid: &str, publish_at: i64, activate_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        public_jwk: "{}".into(),
        private_key_enc: vec![],
        created_at: publish_at,
        publish_at,
        activate_at,
        retire_at: None,
        remove_at: None,
    }
}

fn apply(keys: &mut Vec<SigningKeyRecord>, actions: &[Action], now: i64) {
    for a in actions {
        match a {
            Action::Create { activate_at } => {
                keys.push(key(&format!("k{activate_at}"), now, *activate_at))
            }
            Action::Retire {
                kid,
                retire_at,
                remove_at,
            } => {
                let k = keys.iter_mut().find(|k| &k.kid == kid).unwrap();
                k.retire_at = Some(*retire_at);
                k.remove_at = Some(*remove_at);
            }
        }
    }
}

#[test]
fn nothing_to_do_mid_interval() {
    let keys = vec![key("a", 0, 0)];
    assert_eq!(plan(&keys, 10 * DAY, &settings()), vec![]);
}

#[test]
fn a_successor_is_published_a_day_before_it_activates() {
    let keys = vec![key("a", 0, 0)];
    let now = 29 * DAY;
    assert_eq!(
        plan(&keys, now, &settings()),
        vec![Action::Create {
            activate_at: 30 * DAY
        }]
    );
    // While it is pending nothing more is created.
    let mut keys = keys;
    let actions = plan(&keys, now, &settings());
    apply(&mut keys, &actions, now);
    assert_eq!(plan(&keys, now + 3600, &settings()), vec![]);
}

#[test]
fn the_old_key_retires_when_the_new_one_activates_and_stays_published() {
    let mut keys = vec![key("a", 0, 0), key("b", 29 * DAY, 30 * DAY)];
    let now = 30 * DAY;
    let actions = plan(&keys, now, &settings());
    assert_eq!(
        actions,
        vec![Action::Retire {
            kid: "a".into(),
            retire_at: 30 * DAY,
            remove_at: 30 * DAY + RETIRED_KEY_GRACE
        }]
    );
    apply(&mut keys, &actions, now);
    assert_eq!(state(&keys[0], now), "retired");
    assert_eq!(state(&keys[1], now), "active");
    assert_eq!(state(&keys[0], 30 * DAY + RETIRED_KEY_GRACE), "removed");
}

#[test]
fn a_missed_schedule_catches_up_without_activating_unpublished_keys() {
    // The service was down past the rotation date: the new key still gets its
    // publish-ahead period before it signs.
    let keys = vec![key("a", 0, 0)];
    let now = 45 * DAY;
    assert_eq!(
        plan(&keys, now, &settings()),
        vec![Action::Create {
            activate_at: now + DAY
        }]
    );
}

#[test]
fn no_keys_at_all_creates_one_that_signs_now() {
    assert_eq!(
        plan(&[], 5, &settings()),
        vec![Action::Create { activate_at: 5 }]
    );
}

#[test]
fn states() {
    let mut k = key("a", 10, 20);
    assert_eq!(state(&k, 5), "scheduled");
    assert_eq!(state(&k, 10), "pending");
    assert_eq!(state(&k, 20), "active");
    k.retire_at = Some(30);
    k.remove_at = Some(40);
    assert_eq!(state(&k, 30), "retired");
    assert_eq!(state(&k, 40), "removed");
}
