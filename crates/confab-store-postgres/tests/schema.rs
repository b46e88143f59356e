//! The schema against the rebuild: every table is either a projection (emptied before a
//! replay, `PROJECTIONS`) or kept by it (listed here), so a new projection table cannot be
//! forgotten and survive a rebuild with stale rows.

mod common;

/// The tables a replay keeps: the log itself, the migrations' bookkeeping and operational
/// state (identity providers and links, write leases).
const NOT_REBUILT: &[&str] = &[
    "events",
    "confab_schema",
    "identity_providers",
    "identity_links",
    "write_leases",
];

#[tokio::test]
async fn every_table_is_a_projection_or_kept_by_a_replay() {
    let db = common::database().await;
    confab_store_postgres::migrate(&db.url)
        .await
        .expect("migrate");
    let (client, conn) = tokio_postgres::connect(&db.url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    let conn = tokio::spawn(conn);
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::TEXT FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let projections = confab_store_postgres::PROJECTIONS;
    assert!(tables.len() >= projections.len() + NOT_REBUILT.len());
    for t in &tables {
        let listed = u8::from(projections.contains(&t.as_str()))
            + u8::from(NOT_REBUILT.contains(&t.as_str()));
        assert_eq!(
            listed, 1,
            "table {t} must be in exactly one of PROJECTIONS and NOT_REBUILT"
        );
    }
    for t in projections.iter().chain(NOT_REBUILT) {
        assert!(
            tables.contains(&t.to_string()),
            "table {t} is listed but does not exist"
        );
    }
    drop(client);
    let _ = conn.await;
}
