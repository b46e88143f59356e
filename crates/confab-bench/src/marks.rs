//! Read markers, the most frequent write after sends: 64 members of one room moving their
//! markers in a closed loop, alone, then each sending a message and marking it read. Then
//! membership churn: the same users joining and leaving a public room of their own in a
//! closed loop. The commands go straight to the store (`Store::execute`: rules, log,
//! projections, group commit; no HTTP), so the figures are the write path's.

use crate::harness::{Server, StoreKind, message_text};
use crate::sends::{closed_loop, gather};
use crate::stats::{Table, ms, rate, thousands};
use crate::{Opts, blocking, pg};
use anyhow::Context;
use confab_core::Command;
use confab_core::command::{CreateGroup, MarkRead, Outcome, SendMessage};
use confab_core::ids::{AppId, RoomNumber, Seq, UserId};
use confab_core::model::{MemberState, Visibility};
use confab_core::store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Messages in the room before the markers move: more than any member marks in a run.
const FILL: u64 = 20_000;
/// Sends in flight while filling.
const FILLERS: u64 = 256;

async fn mark(
    store: &Arc<dyn Store>,
    app: AppId,
    who: &str,
    room: i64,
    seq: i64,
) -> Result<(), String> {
    match store
        .execute(Command::MarkRead(MarkRead {
            app,
            actor: UserId(who.to_owned()),
            room: RoomNumber(room),
            seq: Seq(seq),
        }))
        .await
    {
        Ok(Outcome::ReadMarker(s)) if s.0 >= seq => Ok(()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

async fn send(
    store: &Arc<dyn Store>,
    app: AppId,
    who: &str,
    room: i64,
    text: String,
) -> Result<i64, String> {
    match store
        .execute(Command::Send(SendMessage {
            app,
            actor: Some(UserId(who.to_owned())),
            room: RoomNumber(room),
            text,
            reply_to: None,
            client_id: None,
        }))
        .await
    {
        Ok(Outcome::Item { item, .. }) => Ok(item.seq.0),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// Joins (`join`) or leaves the room; the answer must show the new state.
async fn member(
    store: &Arc<dyn Store>,
    app: AppId,
    who: &str,
    room: i64,
    join: bool,
) -> Result<(), String> {
    let (actor, room) = (UserId(who.to_owned()), RoomNumber(room));
    let (cmd, want) = if join {
        (Command::Join { app, actor, room }, MemberState::Joined)
    } else {
        (Command::Leave { app, actor, room }, MemberState::Left)
    };
    match store.execute(cmd).await {
        Ok(Outcome::Member(m)) if m.state == want => Ok(()),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

/// What each member does per round of a phase.
#[derive(Clone, Copy, PartialEq)]
enum Phase {
    /// Moves the marker one message on.
    Marks,
    /// Sends a message and marks it read.
    SendMark,
    /// Joins the churn room and leaves it again.
    JoinLeave,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Marks => "marks",
            Phase::SendMark => "send + mark",
            Phase::JoinLeave => "join + leave",
        }
    }

    fn commands(self) -> f64 {
        if self == Phase::Marks { 1.0 } else { 2.0 }
    }
}

/// Transactions committed in the server's database so far (`pg_stat_database`, which
/// backends report at most about once a second: a rough count).
async fn commits(url: Option<String>) -> anyhow::Result<Option<i64>> {
    let Some(url) = url else { return Ok(None) };
    blocking(move || {
        pg::with_client(&url, |c| {
            let row = c.query_one(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()",
                &[],
            )?;
            Ok(Some(row.get::<_, i64>(0)))
        })
    })
    .await
}

pub async fn run(opts: &Opts, kind: StoreKind) -> anyhow::Result<Table> {
    let members = opts.senders.max(1);
    eprintln!(
        "[marks] starting the server on {}, {members} members, one room",
        kind.name()
    );
    let server = Server::start_on(kind, &opts.pg).await?;
    let app = server.app("bench-marks").await?;
    let tokens = server.users(&app, "m", members).await?;
    let others: Vec<String> = (1..members).map(|i| format!("m{i}")).collect();
    let room = server.group(&tokens[0], &others).await?;
    let app_id = server.app_id(&app.token).await?;
    let store = server.running.store.clone();
    let db_url = server.database().map(|d| d.url.clone());
    // The churn room: public, so joining needs nobody's approval; its owner never leaves,
    // so no leave hands the room on.
    server.user(&app, "churn-owner").await?;
    let churn = match store
        .execute(Command::CreateGroup(CreateGroup {
            app: app_id,
            actor: Some(UserId("churn-owner".into())),
            name: Some("churn".into()),
            image_url: None,
            visibility: Visibility::Public,
            alias: None,
            members: vec![],
        }))
        .await?
    {
        Outcome::Room { room, .. } => room.number.0,
        other => anyhow::bail!("unexpected answer {other:?}"),
    };

    eprintln!("[marks] filling the room with {FILL} messages");
    let mut set = JoinSet::new();
    for f in 0..FILLERS {
        let store = store.clone();
        set.spawn(async move {
            for i in (f..FILL).step_by(FILLERS as usize) {
                let who = format!("m{}", i % members as u64);
                send(&store, app_id, &who, room, message_text(0, i)).await?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r?.map_err(anyhow::Error::msg).context("filling the room")?;
    }

    let warmup = Duration::from_secs_f64(opts.warmup);
    let seconds = Duration::from_secs_f64(opts.seconds);
    let mut t = Table::new(format!(
        "read markers and memberships on {}: {members} members of one room, store direct \
         (no HTTP), {:.0} s",
        kind.name(),
        opts.seconds
    ));
    for ph in [Phase::Marks, Phase::SendMark, Phase::JoinLeave] {
        let phase = ph.name();
        eprintln!(
            "[marks] {phase}: {:.1} s warm-up, then {:.1} s measured",
            opts.warmup, opts.seconds
        );
        let measure_from = Instant::now() + warmup;
        let end = measure_from + seconds;
        let c0 = tokio::spawn({
            let url = db_url.clone();
            async move {
                tokio::time::sleep_until(measure_from.into()).await;
                commits(url).await
            }
        });
        let mut set = JoinSet::new();
        for m in 0..members {
            let store = store.clone();
            let who = format!("m{m}");
            set.spawn(async move {
                closed_loop(measure_from, end, |i| {
                    let (store, who) = (&store, &who);
                    async move {
                        match ph {
                            // Each step moves the marker one message on: a real write.
                            Phase::Marks => {
                                mark(store, app_id, who, room, (i + 1).min(FILL) as i64).await
                            }
                            Phase::SendMark => {
                                let text = message_text(m, i);
                                let seq = send(store, app_id, who, room, text).await?;
                                mark(store, app_id, who, room, seq).await
                            }
                            Phase::JoinLeave => {
                                member(store, app_id, who, churn, true).await?;
                                member(store, app_id, who, churn, false).await
                            }
                        }
                    }
                })
                .await
            });
        }
        let done = gather(set, measure_from).await?;
        let c1 = commits(db_url.clone()).await?;
        let per_op = ph.commands();
        t.info(
            &format!("{phase}: rounds/s (p50 / p99)"),
            format!(
                "{} ({} / {})",
                rate(done.per_sec, "/s"),
                ms(done.samples.pct(50.0)),
                ms(done.samples.pct(99.0))
            ),
        );
        t.info(
            &format!("{phase}: commands in the window"),
            thousands((done.samples.len() as f64 * per_op) as u64),
        );
        if let (Some(a), Some(b)) = (c0.await??, c1) {
            let txs = (b - a).max(1) as f64;
            t.info(
                &format!("{phase}: commands per commit (pg_stat_database, rough)"),
                format!("{:.1}", done.samples.len() as f64 * per_op / txs),
            );
        }
        t.check(
            &format!("{phase}: errors"),
            thousands(done.errors),
            "0",
            done.errors == 0,
        );
        if let Some(e) = done.first_error {
            t.note(format!("{phase}: first error: {e}"));
        }
    }
    server.stop().await?;
    Ok(t)
}
