//! `license-demo`: a license server (borrow/return with commit and overage billing) on SQLite,
//! wrapped in `realtime-layer`, plus a stress tester for it.
//!
//! The binary (`license-demo`) serves by default and runs the stress tester as
//! `license-demo stress`; the library exposes the same pieces for tests and the bench.
//!
//! Modules depend downwards only: `secret`, `config`, `limits`, `error` and `pool` at the bottom; `auth`,
//! then `api` (which uses `auth`); `server`, which wires them together; `stress` (which needs
//! `pool`'s types, `auth`'s signing and `secret`), `seed` (a synthetic month for the usage tier,
//! from `config`) and `cli` (the flags, turned into the settings of the others) on top.

#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod limits;
pub mod pool;
pub mod secret;
pub mod seed;
pub mod server;
pub mod stress;
