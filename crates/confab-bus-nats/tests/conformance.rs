//! The bus conformance cases, against the machine's NATS.

mod common;

use confab_core::bus::conformance as bc;

#[tokio::test]
async fn every_variant_round_trips() {
    let Some(url) = common::shared_nats() else {
        return;
    };
    bc::round_trip_of_every_variant(common::bus(&url, 1024).await).await;
}

#[tokio::test]
async fn order_per_publisher() {
    let Some(url) = common::shared_nats() else {
        return;
    };
    bc::order_per_publisher(common::bus(&url, 4096).await, 2000).await;
}

#[tokio::test]
async fn only_what_is_listened() {
    let Some(url) = common::shared_nats() else {
        return;
    };
    bc::only_what_is_listened(common::bus(&url, 1024).await).await;
}

#[tokio::test]
async fn lag_is_reported() {
    let Some(url) = common::shared_nats() else {
        return;
    };
    bc::lag_is_reported(common::bus(&url, 16).await, 2000).await;
}

#[tokio::test]
async fn closed_is_reported() {
    let Some(url) = common::shared_nats() else {
        return;
    };
    bc::closed_is_reported(common::bus(&url, 16).await).await;
}
