//! Atomic borrow under real concurrency (the Python original granted 42 of 18 here).

mod common;

use common::{start, start_default, tool};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::Barrier;

const MBD: &str = "Model-Based Design Studio"; // total 18, commit 6, max_overage 12

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_simultaneous_borrows_of_eighteen_licenses() {
    let s = Arc::new(start_default().await);
    let barrier = Arc::new(Barrier::new(64));
    let mut tasks = vec![];
    for i in 0..64 {
        let s = Arc::clone(&s);
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            s.borrow(MBD, &format!("user-{i}")).await
        }));
    }
    let mut granted = vec![];
    let mut refused = 0;
    for t in tasks {
        let (code, body) = t.await.unwrap();
        match code {
            200 => granted.push(body),
            409 => {
                assert_eq!(body["error"], "exhausted", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(granted.len(), 18, "exactly total licenses are granted");
    assert_eq!(refused, 46);
    let ids: HashSet<&str> = granted.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 18);
    let overage = granted.iter().filter(|b| b["overage"] == true).count();
    assert_eq!(overage, 12, "borrows 7..=18 are above commit 6");

    let st = s.status_of(MBD).await;
    assert_eq!(st["borrowed"], 18);
    assert_eq!(st["available"], 0);
    assert_eq!(st["overage"], 12);
    assert_eq!(st["current_overage_cost"], 12.0 * 600.0);
    let (_, open) = s.get("/borrows").await;
    let open_ids: HashSet<&str> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        open_ids, ids,
        "the database holds exactly the granted borrows"
    );
    let (_, charges) = s
        .get("/overage-charges?tool=Model-Based%20Design%20Studio")
        .await;
    assert_eq!(charges["charges"].as_array().unwrap().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn churn_never_over_borrows_and_ends_balanced() {
    // 32 workers borrow and return a 3-license tool 25 times each.
    let s = Arc::new(start(vec![tool("Scarce", 3, 1, 2, 1.0)]).await);
    let mut tasks = vec![];
    for w in 0..32 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut overage) = (0u32, 0u32);
            for _ in 0..25 {
                let (code, body) = s.borrow("Scarce", &format!("w{w}")).await;
                if code == 200 {
                    ok += 1;
                    overage += u32::from(body["overage"] == true);
                    let st = s.status_of("Scarce").await;
                    assert!(st["borrowed"].as_u64().unwrap() <= 3, "over-borrowed: {st}");
                    let (rc, rb) = s.return_id(body["id"].as_str().unwrap()).await;
                    assert_eq!(rc, 200, "{rb}");
                } else {
                    assert_eq!(code, 409, "{body}");
                }
            }
            (ok, overage)
        }));
    }
    let (mut ok, mut overage) = (0, 0);
    for t in tasks {
        let (o, v) = t.await.unwrap();
        ok += o;
        overage += v;
    }
    assert!(ok > 0);
    let st = s.status_of("Scarce").await;
    assert_eq!(st["borrowed"], 0);
    assert_eq!(st["current_overage_cost"], f64::from(overage));
    // At most 800 overage borrows: one page of 1,000.
    let (_, charges) = s.get("/overage-charges?limit=1000").await;
    assert_eq!(charges["charges"].as_array().unwrap().len() as u32, overage);
}
