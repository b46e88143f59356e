//! Users, tokens, rooms and memberships for the cluster scenarios, made through the bench's own
//! store on the cluster's database: many commands in flight fill the writer's batches, so tens
//! of thousands of users take seconds instead of the minutes of two HTTP requests each.

use super::Cluster;
use anyhow::Context;
use confab_core::Command;
use confab_core::command::Outcome;
use confab_core::command::{CreateGroup, UpsertUser};
use confab_core::ids::{RoomNumber, UserId};
use confab_core::model::Visibility;
use futures_util::StreamExt;

/// Store commands in flight at once during the setup.
const IN_FLIGHT: usize = 1024;

/// How long the tokens minted here stay valid (seconds): longer than any run.
const TOKEN_TTL: i64 = 86_400;

impl Cluster {
    /// Creates users `{prefix}0..n`; returns their tokens, in order.
    pub async fn users(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let ids: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
        self.all(ids.iter().map(|id| {
            Command::UpsertUser(UpsertUser {
                app: self.keys.id,
                user: UserId(id.clone()),
                name: Some(id.clone()),
                image_url: None,
                email: None,
            })
        }))
        .await
        .context("creating users")?;
        ids.iter().map(|id| self.token(id)).collect()
    }

    /// A token for user `id`, signed with the app's key as a node signs the ones it mints.
    pub fn token(&self, id: &str) -> anyhow::Result<String> {
        confab_api::auth::mint(&self.keys, &UserId(id.to_owned()), TOKEN_TTL)
            .map(|(token, _)| token)
            .map_err(|e| anyhow::anyhow!("cannot mint a token: {e:?}"))
    }

    /// A public group room of `owner` (created by them), with `members` joining it.
    pub async fn room(&self, owner: &str, members: &[String]) -> anyhow::Result<i64> {
        let created = self
            .store
            .execute(Command::CreateGroup(CreateGroup {
                app: self.keys.id,
                actor: Some(UserId(owner.to_owned())),
                name: Some("bench".into()),
                image_url: None,
                visibility: Visibility::Public,
                alias: None,
                members: Vec::new(),
            }))
            .await?;
        let Outcome::Room { room, .. } = created else {
            anyhow::bail!("creating a room gave no room");
        };
        let number = room.number;
        self.all(members.iter().map(|m| Command::Join {
            app: self.keys.id,
            actor: UserId(m.clone()),
            room: number,
        }))
        .await
        .context("filling the room")?;
        let RoomNumber(n) = number;
        Ok(n)
    }

    /// Executes `cmds`, many at once; fails on the first refusal.
    async fn all(&self, cmds: impl Iterator<Item = Command>) -> anyhow::Result<()> {
        let store = &self.store;
        let results: Vec<_> = futures_util::stream::iter(cmds.map(|c| store.execute(c)))
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        for r in results {
            r?;
        }
        Ok(())
    }
}
