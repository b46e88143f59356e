use super::*;

#[test]
fn layers_override_in_order_and_errors_name_the_key() {
    let mut c = Config::default();
    c.apply_toml("listen = \"127.0.0.1:9000\"\nreaders = 2\n", "confab.toml")
        .expect("accepted");
    assert_eq!(c.listen, "127.0.0.1:9000");
    c.apply_env(|k| (k == "CONFAB_READERS").then(|| "3".to_string()))
        .expect("accepted");
    assert_eq!(c.readers, 3);
    let e = c
        .apply_env(|k| (k == "CONFAB_LISTEN").then(|| "nope".to_string()))
        .expect_err("refused");
    assert!(
        e.to_string().contains("listen") && e.to_string().contains("CONFAB_LISTEN"),
        "{e}"
    );
    let e = c
        .apply_toml("colour = 1", "confab.toml")
        .expect_err("refused");
    assert!(e.to_string().contains("colour"), "{e}");
    let e = c
        .set("durability", "sometimes", "--durability")
        .expect_err("refused");
    assert!(e.to_string().contains("durability"), "{e}");
}

#[test]
fn nats_servers_are_checked() {
    let mut c = Config::default();
    assert_eq!(c.nats, "");
    for ok in [
        "nats://127.0.0.1:4222",
        "n1:4222, nats://n2:4222",
        "nats://u:p@h:4222",
        "",
    ] {
        c.set("nats", ok, "--nats").expect(ok);
        assert_eq!(c.nats, ok);
    }
    for bad in [
        "tls://h:4222",
        "nats://h",
        "h:0",
        "nats://:4222",
        "nats://h:4222,",
    ] {
        let e = c.set("nats", bad, "CONFAB_NATS").expect_err(bad);
        assert!(e.to_string().contains("nats"), "{e}");
    }
    c.set("nats_prefix", "staging.confab", "toml")
        .expect("tokens");
    for bad in ["", "a..b", "a.*", "a b", "a.>"] {
        assert!(c.set("nats_prefix", bad, "toml").is_err(), "{bad}");
    }
}

#[test]
fn log_filters_and_listen_addresses_are_checked() {
    let mut c = Config::default();
    for good in ["warn", "DEBUG", "info,confab_api=debug", "off"] {
        c.set("log", good, "test").expect(good);
    }
    for bad in ["verbose", "", "info,", "confab=loud"] {
        let e = c.set("log", bad, "CONFAB_LOG").expect_err(bad);
        assert!(e.to_string().contains("CONFAB_LOG"), "{e}");
    }
    for good in ["127.0.0.1:0", "[::1]:8080", "localhost:8080"] {
        c.set("listen", good, "--listen").expect(good);
    }
    for bad in [
        "localhost",
        ":8080",
        "localhost:99999",
        "no such host.invalid:80",
    ] {
        c.set("listen", bad, "--listen").expect_err(bad);
    }
}

#[test]
fn transport_settings_parse_and_the_cap_follows_the_descriptor_limit() {
    let mut c = Config::default();
    c.apply_toml(
        "cors_origins = [\"https://App.example\", \"http://localhost:3000/\"]\n",
        "confab.toml",
    )
    .expect("accepted");
    assert_eq!(
        c.cors_origins,
        ["https://app.example", "http://localhost:3000"]
    );
    c.apply_env(|k| (k == "CONFAB_CORS_ORIGINS").then(|| "*".to_string()))
        .expect("accepted");
    assert_eq!(c.cors_origins, ["*"]);
    let e = c
        .set("cors_origins", "https://a.example/app", "test")
        .expect_err("a path is not an origin");
    assert!(e.to_string().contains("cors_origins"), "{e}");
    assert!(c.max_connections() >= 1);
    if let Some(limit) = descriptor_limit() {
        assert!(c.max_connections() < limit, "a reserve is kept");
    }
    c.set("max_connections", "7", "test").expect("accepted");
    assert_eq!(c.max_connections(), 7);
    let e = c
        .set("http_body_timeout_ms", "0", "test")
        .expect_err("too short");
    assert!(e.to_string().contains("http_body_timeout_ms"), "{e}");
}

#[test]
fn ws_settings_are_checked_and_reach_the_gateway() {
    let mut c = Config::default();
    c.apply_env(|k| (k == "CONFAB_WS_QUEUE").then(|| "64".to_string()))
        .expect("accepted");
    c.apply_toml(
        "ws_resume_cap = 10\nws_presence_grace_ms = 0\n",
        "confab.toml",
    )
    .expect("accepted");
    let ws = c.ws();
    assert_eq!((ws.queue, ws.resume_cap), (64, 10));
    assert!(ws.presence_grace.is_zero());
    assert_eq!(
        ws.head_check,
        std::time::Duration::from_secs(3),
        "the default"
    );
    c.set("ws_head_check_ms", "250", "test").expect("in range");
    assert_eq!(c.ws().head_check, std::time::Duration::from_millis(250));
    let e = c
        .set("ws_head_check_ms", "0", "--ws-head-check-ms")
        .expect_err("refused");
    assert!(e.to_string().contains("ws_head_check_ms"), "{e}");
    assert_eq!(
        ws.join_check,
        std::time::Duration::from_secs(5),
        "the default"
    );
    c.apply_env(|k| (k == "CONFAB_WS_JOIN_CHECK_MS").then(|| "400".to_string()))
        .expect("accepted");
    assert_eq!(c.ws().join_check, std::time::Duration::from_millis(400));
    let e = c
        .set("ws_join_check_ms", "5", "--ws-join-check-ms")
        .expect_err("refused");
    assert!(e.to_string().contains("ws_join_check_ms"), "{e}");
    c.set("ws_presence_heartbeat_ms", "250", "test")
        .expect("in range");
    assert_eq!(c.ws().presence_heartbeat.as_millis(), 250);
    let e = c
        .set("ws_presence_heartbeat_ms", "5", "test")
        .expect_err("too often");
    assert!(e.to_string().contains("ws_presence_heartbeat_ms"), "{e}");
    let e = c.set("ws_queue", "0", "--ws-queue").expect_err("refused");
    assert!(e.to_string().contains("ws_queue"), "{e}");
    c.set("ws_max_message_bytes", "1024", "test")
        .expect("in range");
    let e = c.validate().expect_err("too small for a full message");
    assert!(e.to_string().contains("ws_max_message_bytes"), "{e}");
}

#[test]
fn rate_limits_are_checked_and_the_old_send_key_still_works() {
    let mut c = Config::default();
    c.apply_env(|k| (k == "CONFAB_WS_SENDS_PER_SECOND").then(|| "7".to_string()))
        .expect("accepted");
    assert_eq!(c.sends_per_second, 7);
    c.apply_env(|k| match k {
        "CONFAB_WS_SENDS_PER_SECOND" => Some("7".to_string()),
        "CONFAB_SENDS_PER_SECOND" => Some("9".to_string()),
        _ => None,
    })
    .expect("accepted");
    assert_eq!(c.sends_per_second, 9, "the new name wins");
    c.apply_toml(
        "anon_apps_per_hour = 36
reads_per_second = 0
",
        "confab.toml",
    )
    .expect("accepted");
    let rate = c.rate();
    assert!((rate.app_creations.per_second - 0.01).abs() < 1e-9);
    assert_eq!(rate.reads.per_second, 0.0);
    let e = c.set("sends_burst", "0", "test").expect_err("refused");
    assert!(e.to_string().contains("sends_burst"), "{e}");
}

#[test]
fn identity_provider_fetches_stay_off_internal_addresses_unless_allowed() {
    let mut c = Config::default();
    assert!(!c.oidc_allow_loopback_http && !c.oidc_allow_private_networks);
    c.apply_toml("oidc_allow_loopback_http = true", "confab.toml")
        .expect("accepted");
    assert!(c.oidc_allow_loopback_http);
    c.apply_env(|k| (k == "CONFAB_OIDC_ALLOW_PRIVATE_NETWORKS").then(|| "yes".to_string()))
        .expect("accepted");
    assert!(c.oidc_allow_private_networks);
    let e = c
        .set("oidc_allow_loopback_http", "sometimes", "--x")
        .expect_err("refused");
    assert!(e.to_string().contains("oidc_allow_loopback_http"), "{e}");
}

#[test]
fn write_routing_needs_postgres_and_nats_and_can_be_turned_off() {
    let mut c = Config::default();
    assert!(c.route_writes);
    assert_eq!(c.write_lease_ms, 10_000);
    assert!(!c.routes_writes(), "SQLite, no NATS: nothing to route");
    c.set("database", "postgres://u@h/db", "test").expect("url");
    assert!(!c.routes_writes(), "no NATS: nothing to route over");
    c.set("nats", "nats://127.0.0.1:4222", "test")
        .expect("nats");
    assert!(c.routes_writes());
    c.apply_env(|k| (k == "CONFAB_ROUTE_WRITES").then(|| "false".to_string()))
        .expect("accepted");
    assert!(!c.routes_writes());
    c.apply_toml("route_writes = true\nwrite_lease_ms = 500\n", "confab.toml")
        .expect("accepted");
    assert!(c.routes_writes());
    assert_eq!(c.write_lease_ms, 500);
    for bad in ["0", "99", "600001", "soon"] {
        let e = c.set("write_lease_ms", bad, "test").expect_err("refused");
        assert!(e.to_string().contains("write_lease_ms"), "{e}");
    }
    assert!(c.set("route_writes", "maybe", "test").is_err());
}
