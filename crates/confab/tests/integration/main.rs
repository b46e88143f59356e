//! All integration tests in one binary (one link, faster on small machines). Each test starts
//! the real server on 127.0.0.1:0 with its own data dir and talks HTTP to it.

mod common;

mod auth;
mod bus;
mod cli;
mod cluster_clients;
mod cluster_faults;
mod cluster_limits;
mod compat;
mod durability;
mod faults;
mod history;
mod hostile;
mod limits;
mod loss;
mod meetups;
mod members;
mod messages;
mod nodes;
mod oidc;
mod presence;
mod process;
mod rooms;
mod routing;
mod search;
mod smoke;
mod tenancy;
mod ws;
