//! pool-status — a database connection pool, its size and commitment from a status source.
//!
//! The app owns its numbers (open connections per pool, their size, the reserved share); a
//! status source hands them to the dashboard, which then draws "in commit / in overage /
//! available" per pool and labels everything in this domain's words. Events are recorded
//! straight through the `Realtime` handle, as a pool (not a request) would.
//! Run: `cargo run -p realtime-examples --example pool-status -- --simulate`
//! then open http://127.0.0.1:3004/realtime

use axum::Router;
use realtime_layer::{Event, Labels, Realtime, ResourceStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// One connection pool: `size` connections, `reserved` of them guaranteed to this service.
pub struct Pool {
    pub name: &'static str,
    pub size: u32,
    pub reserved: u32,
    pub open: AtomicU32,
}

impl Pool {
    /// Checks a connection out, recording the outcome.
    pub fn acquire(&self, realtime: &Realtime, client: &str) -> bool {
        let taken = self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < self.size).then_some(n + 1)
            });
        match taken {
            Ok(before) => realtime.record(
                Event::borrow(self.name, client.to_owned()).overage(before >= self.reserved),
            ),
            Err(_) => realtime.record(Event::failure(self.name, client.to_owned(), "pool_timeout")),
        }
        taken.is_ok()
    }

    /// Gives a connection back.
    pub fn release(&self, realtime: &Realtime, client: &str) {
        if self
            .open
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            realtime.record(Event::returned(self.name, client.to_owned()));
        }
    }
}

pub fn pools() -> Arc<Vec<Pool>> {
    Arc::new(vec![
        Pool {
            name: "orders-primary",
            size: 20,
            reserved: 12,
            open: AtomicU32::new(0),
        },
        Pool {
            name: "orders-replica",
            size: 30,
            reserved: 10,
            open: AtomicU32::new(0),
        },
        Pool {
            name: "analytics",
            size: 8,
            reserved: 2,
            open: AtomicU32::new(0),
        },
    ])
}

/// The realtime instance, reading pool sizes from the pools themselves.
pub fn realtime(pools: Arc<Vec<Pool>>) -> Realtime {
    Realtime::builder()
        .labels(
            Labels::default()
                .title("Database pools")
                .resource("Pool", "Pools")
                .user("Client"),
        )
        .status_source(move || {
            pools
                .iter()
                .map(|p| {
                    ResourceStatus::new(p.name, p.size, p.reserved, p.open.load(Ordering::SeqCst))
                })
                .collect()
        })
        .build()
        .expect("valid configuration")
}

pub fn app(realtime: &Realtime) -> Router {
    Router::new()
        .merge(realtime.routes())
        .merge(realtime.metrics_routes())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = realtime_examples::Args::parse(3004);
    let pools = pools();
    let realtime = realtime(pools.clone());
    if args.simulate {
        tokio::spawn(simulate(realtime.clone(), pools));
    }
    realtime_examples::serve(app(&realtime), args.bind, &realtime, "/realtime").await?;
    Ok(())
}

/// Clients hold connections for a random while; bursts push the pools past their reservation.
async fn simulate(realtime: Realtime, pools: Arc<Vec<Pool>>) {
    let mut rng = realtime_examples::Rng::new();
    loop {
        let pool = rng.below(pools.len());
        let client = format!("worker-{}", rng.below(12));
        if pools[pool].acquire(&realtime, &client) {
            let (realtime, pools) = (realtime.clone(), pools.clone());
            let hold = 500 + rng.below(4000) as u64;
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(hold)).await;
                pools[pool].release(&realtime, &client);
            });
        }
        rng.pause(40, 200).await;
    }
}
