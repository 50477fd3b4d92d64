use super::capture::CAPTURE_QUEUE;
use super::*;
use crate::clock::ManualClock;
use crate::event::EventKind;
use std::time::Duration;

const T0: u64 = 1_800_000_000_000;

fn buffer_with(config: BufferConfig) -> (EventBuffer, ManualClock) {
    let clock = ManualClock::new(T0);
    (
        EventBuffer::new(config, Arc::new(clock.clone())).unwrap(),
        clock,
    )
}

fn buffer() -> (EventBuffer, ManualClock) {
    buffer_with(BufferConfig::default())
}

#[test]
fn retention_expires_old_events_and_seconds() {
    let (buf, clock) = buffer();
    buf.record(&Event::borrow("a", "u1"));
    clock.advance(Duration::from_secs(3 * 3600));
    buf.record(&Event::returned("a", "u1"));
    buf.record(&Event::failure("a", "u2", "exhausted"));
    assert_eq!(buf.stats().total_events, 3);
    assert_eq!(buf.stats().oldest_event_ms, Some(T0));

    // 6 h after the first event it is gone, the later ones stay.
    clock.advance(Duration::from_secs(3 * 3600) + Duration::from_millis(1));
    let stats = buf.stats();
    assert_eq!(
        (stats.borrow_count, stats.return_count, stats.failure_count),
        (0, 1, 1)
    );
    assert_eq!(stats.oldest_event_ms, Some(T0 + 3 * 3600 * 1000));
    let series = buf.seconds(0, u64::MAX, None);
    assert_eq!(
        series.points.len(),
        1,
        "the first second's aggregate expired too"
    );

    clock.advance(Duration::from_secs(6 * 3600));
    assert_eq!(buf.stats().total_events, 0);
    assert_eq!(buf.stats().oldest_event_ms, None);
}

#[test]
fn caps_drop_oldest_per_kind() {
    let config = BufferConfig {
        max_borrows: 5,
        max_returns: 3,
        max_failures: 2,
        ..BufferConfig::default()
    };
    let (buf, clock) = buffer_with(config);
    for i in 0..12 {
        buf.record(&Event::borrow("a", format!("u{i}")));
        buf.record(&Event::returned("a", format!("u{i}")));
        buf.record(&Event::failure("a", format!("u{i}"), "exhausted"));
        clock.advance(Duration::from_millis(10));
    }
    let stats = buf.stats();
    assert_eq!(
        (stats.borrow_count, stats.return_count, stats.failure_count),
        (5, 3, 2)
    );
    let recent = buf.recent_events(60, 100, &EventFilter::default());
    assert_eq!(recent.len(), 10);
    // Newest first; the oldest kept borrow is user 7.
    assert_eq!(&*recent[0].user, "u11");
    let oldest_borrow = recent
        .iter()
        .rev()
        .find(|e| e.kind == EventKind::Borrow)
        .unwrap();
    assert_eq!(&*oldest_borrow.user, "u7");
    // Aggregates are not capped: rates still count everything in the window.
    assert_eq!(
        buf.summarize(60, &EventFilter::default()).totals.borrows,
        12
    );
}

#[test]
fn names_fold_into_other_beyond_the_caps() {
    let config = BufferConfig {
        max_users: 2,
        max_resources: 1,
        ..BufferConfig::default()
    };
    let (buf, _) = buffer_with(config);
    buf.record(&Event::borrow("pool", "ann"));
    buf.record(&Event::borrow("pool", "bob"));
    buf.record(&Event::borrow("pool", "cid"));
    buf.record(&Event::borrow("second-pool", "ann"));
    let stats = buf.stats();
    assert_eq!(
        (
            stats.folded_users,
            stats.folded_resources,
            stats.folded_names
        ),
        (1, 1, 2)
    );
    let recent = buf.recent_events(60, 10, &EventFilter::default());
    assert_eq!(&*recent[0].resource, OTHER_NAME);
    assert_eq!(&*recent[0].user, "ann");
    assert_eq!(&*recent[1].user, OTHER_NAME);
    let names: Vec<_> = buf
        .summarize(60, &EventFilter::default())
        .resources
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, vec![Arc::from(OTHER_NAME), Arc::from("pool")]);
}

#[test]
fn summarize_counts_levels_and_peaks() {
    let (buf, clock) = buffer();
    for _ in 0..4 {
        buf.record(&Event::borrow("a", "u"));
    }
    buf.record(&Event::borrow("a", "u").overage(true));
    clock.advance(Duration::from_secs(1));
    for _ in 0..3 {
        buf.record(&Event::returned("a", "u"));
    }
    buf.record(&Event::failure("a", "v", "max_overage"));
    buf.record(&Event::borrow("b", "v"));
    let summary = buf.summarize(60, &EventFilter::default());
    assert_eq!(
        summary.totals,
        Totals {
            borrows: 6,
            overage_borrows: 1,
            returns: 3,
            failures: 1
        }
    );
    let a = &summary.resources[0];
    assert_eq!((&*a.name, a.borrowed, a.peak_borrowed), ("a", 2, 5));

    // 2 minutes later the 60 s window is idle, the peak falls back to the level.
    clock.advance(Duration::from_secs(120));
    let summary = buf.summarize(60, &EventFilter::default());
    assert_eq!(summary.totals, Totals::default());
    assert_eq!(
        (
            summary.resources[0].borrowed,
            summary.resources[0].peak_borrowed
        ),
        (2, 2)
    );
    // A wider window still sees the peak.
    assert_eq!(
        buf.summarize(300, &EventFilter::default()).resources[0].peak_borrowed,
        5
    );
}

#[test]
fn filters_by_user_and_resource() {
    let (buf, _) = buffer();
    buf.record(&Event::borrow("a", "ann"));
    buf.record(&Event::borrow("a", "bob"));
    buf.record(&Event::borrow("b", "ann").overage(true));
    let ann = EventFilter {
        user: Some("ann".into()),
        ..Default::default()
    };
    let s = buf.summarize(60, &ann);
    assert_eq!((s.totals.borrows, s.totals.overage_borrows), (2, 1));
    let only_a = EventFilter {
        resource: Some("a".into()),
        ..Default::default()
    };
    let s = buf.summarize(60, &only_a);
    assert_eq!(s.totals.borrows, 2);
    assert_eq!(s.resources.len(), 1);
    let both = EventFilter {
        resource: Some("a".into()),
        user: Some("ann".into()),
        ..Default::default()
    };
    assert_eq!(buf.recent_events(60, 10, &both).len(), 1);
    let nobody = EventFilter {
        user: Some("zed".into()),
        ..Default::default()
    };
    assert_eq!(buf.summarize(60, &nobody).totals, Totals::default());
    assert!(buf.recent_events(60, 10, &nobody).is_empty());
}

#[test]
fn cursors_and_pages_walk_all_kinds_in_time_order() {
    let (buf, clock) = buffer();
    let start = buf.cursor();
    for i in 0..10 {
        match i % 3 {
            0 => buf.record(&Event::borrow("a", format!("u{i}")).borrow_id(i.to_string())),
            1 => buf.record(&Event::returned("a", format!("u{i}")).borrow_id(i.to_string())),
            _ => buf.record(&Event::failure("a", format!("u{i}"), "exhausted")),
        }
        clock.advance(Duration::from_millis(5));
    }
    let (events, omitted, end) = buf.events_after(start, 4, &EventFilter::default());
    assert_eq!(omitted, 6);
    let users: Vec<_> = events.iter().map(|e| e.user.to_string()).collect();
    assert_eq!(users, ["u6", "u7", "u8", "u9"]);
    assert_eq!(end, buf.cursor());
    assert!(buf
        .events_after(end, 4, &EventFilter::default())
        .0
        .is_empty());

    let mut cursor = buf.cursor_at(T0);
    let mut all = Vec::new();
    loop {
        let (page, next) = buf.page(cursor, 3, &EventFilter::default());
        if page.is_empty() {
            break;
        }
        all.extend(page);
        cursor = next;
    }
    assert_eq!(all.len(), 10);
    assert!(all.windows(2).all(|w| w[0].ts_ms <= w[1].ts_ms));
    assert_eq!(all[3].borrow_id.as_deref(), Some("3"));
    assert_eq!(all[2].reason.as_deref(), Some("exhausted"));
    assert_eq!(all[2].borrow_id, None);
}

#[test]
fn seconds_series_and_level_sync() {
    let (buf, clock) = buffer();
    let s0 = T0 / 1000;
    buf.record(&Event::borrow("a", "u"));
    buf.record(&Event::borrow("a", "u"));
    clock.advance(Duration::from_secs(2));
    buf.record(&Event::returned("a", "u"));
    let series = buf.seconds(s0, s0 + 10, None);
    assert_eq!(series.level_before, 0);
    assert_eq!(series.points.len(), 2);
    assert_eq!(
        (
            series.points[0].t,
            series.points[0].borrows,
            series.points[0].peak_borrowed
        ),
        (s0, 2, 2)
    );
    assert_eq!(
        (
            series.points[1].t,
            series.points[1].returns,
            series.points[1].end_borrowed
        ),
        (s0 + 2, 1, 1)
    );
    assert_eq!(buf.seconds(s0 + 1, s0 + 10, Some("a")).level_before, 2);
    assert!(buf.seconds(s0, s0 + 10, Some("nope")).points.is_empty());

    // The app says 7 are borrowed (e.g. after a restart): levels and peaks follow.
    buf.sync_levels([("a", 7)]);
    assert_eq!(buf.levels(), vec![(Arc::from("a"), 7)]);
    assert_eq!(
        buf.summarize(60, &EventFilter::default()).resources[0].peak_borrowed,
        7
    );
}

#[test]
fn clock_going_backwards_keeps_order() {
    let (buf, clock) = buffer();
    clock.advance(Duration::from_secs(10));
    buf.record(&Event::borrow("a", "late"));
    clock.set(T0 + 1_000);
    buf.record(&Event::borrow("a", "early"));
    let recent = buf.recent_events(60, 10, &EventFilter::default());
    assert_eq!(recent.len(), 2);
    assert!(recent[0].ts_ms >= recent[1].ts_ms);
}

#[test]
fn timestamps_survive_rebasing_past_u32_milliseconds() {
    let (buf, clock) = buffer();
    for day in 0..60u64 {
        clock.set(T0 + day * 86_400_000);
        buf.record(&Event::borrow("a", "u"));
    }
    let recent = buf.recent_events(60, 10, &EventFilter::default());
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].ts_ms, T0 + 59 * 86_400_000);
}

#[test]
fn invalid_configs_are_errors() {
    let bad = BufferConfig {
        max_resources: 5000,
        ..BufferConfig::default()
    };
    assert!(EventBuffer::new(bad, Arc::new(ManualClock::new(0))).is_err());
    let bad = BufferConfig {
        retention: Duration::ZERO,
        ..BufferConfig::default()
    };
    let err = EventBuffer::new(bad, Arc::new(ManualClock::new(0))).unwrap_err();
    assert!(err.to_string().contains("retention"));
    let bad = BufferConfig {
        max_second_entries: 1_000,
        ..BufferConfig::default()
    };
    let err = EventBuffer::new(bad, Arc::new(ManualClock::new(0))).unwrap_err();
    assert!(err.to_string().contains("max_second_entries"));
}

#[test]
fn aggregate_cap_drops_whole_oldest_seconds() {
    // 400 resources busy every second: 400 entries per second, 120,000 over 300 s, against a
    // cap of 65,536 entries.
    let config = BufferConfig {
        max_second_entries: 65_536,
        ..BufferConfig::default()
    };
    let (buf, clock) = buffer_with(config);
    let names: Vec<String> = (0..400).map(|r| format!("res-{r:03}")).collect();
    for second in 0..300 {
        if second > 0 {
            clock.advance(Duration::from_secs(1));
        }
        for name in &names {
            buf.record(&Event::borrow(name.clone(), "u"));
        }
    }
    let stats = buf.stats();
    let dropped = stats.aggregates_dropped_seconds;
    assert_eq!(
        dropped,
        300 - 65_536 / 400,
        "whole seconds dropped to stay under the cap"
    );
    // The borrow ring (100,000 x 16 B) and the capture queue, plus the capped aggregates
    // (10 B per entry) and change.
    let queue = (2 * CAPTURE_QUEUE * std::mem::size_of::<(u64, Event)>()) as u64;
    let aggregates = stats.memory_bytes - 100_000 * 16 - queue;
    assert!(
        aggregates < 65_537 * 10 + 100_000,
        "aggregates {aggregates}"
    );
    // Recent windows are exact; the longest window misses exactly the dropped seconds.
    let minute = buf.summarize(60, &EventFilter::default());
    assert_eq!(minute.totals.borrows, 60 * 400);
    let all = buf.summarize(21_600, &EventFilter::default());
    assert_eq!(all.totals.borrows, (300 - dropped) * 400);
    // Levels are kept per resource, not in the dropped seconds.
    assert!(all.resources.iter().all(|r| r.borrowed == 300));
}

#[test]
fn stored_event_is_sixteen_bytes_and_memory_is_bounded() {
    assert_eq!(std::mem::size_of::<ring::PackedEvent>(), 16);
    let config = BufferConfig {
        max_borrows: 1000,
        max_returns: 1000,
        max_failures: 100,
        ..BufferConfig::default()
    };
    let (buf, clock) = buffer_with(config);
    for i in 0..10_000u32 {
        buf.record(&Event::borrow("a", format!("u{}", i % 50)));
        buf.record(&Event::returned("a", format!("u{}", i % 50)));
        buf.record(&Event::failure("a", "x", "exhausted"));
        clock.advance(Duration::from_millis(3));
    }
    let stats = buf.stats();
    assert_eq!(stats.total_events, 2100);
    // Rings hold exactly their caps; aggregates cover the 30 s of activity.
    assert!(
        stats.memory_bytes < 200_000,
        "memory {}",
        stats.memory_bytes
    );
}

#[test]
fn busy_seconds_count_past_255_per_resource() {
    let (buf, _) = buffer();
    for i in 0..700 {
        buf.record(&Event::borrow("a", "u").overage(i % 2 == 0));
    }
    for _ in 0..300 {
        buf.record(&Event::returned("a", "u"));
    }
    for _ in 0..600 {
        buf.record(&Event::failure("a", "u", "exhausted"));
    }
    let t = buf.summarize(60, &EventFilter::default()).totals;
    assert_eq!(
        t,
        Totals {
            borrows: 700,
            overage_borrows: 350,
            returns: 300,
            failures: 600
        }
    );
    let s0 = T0 / 1000;
    let series = buf.seconds(s0, s0, Some("a"));
    let p = series.points[0];
    assert_eq!(
        (p.borrows, p.overage_borrows, p.returns, p.failures),
        (700, 350, 300, 600)
    );
    assert_eq!((p.peak_borrowed, p.end_borrowed), (700, 400));
    assert_eq!(buf.seconds(s0, s0, None).points[0].peak_borrowed, 700);
    assert_eq!(
        buf.summarize(60, &EventFilter::default()).resources[0].peak_borrowed,
        700
    );
}

fn stored(ts_ms: u64, kind: EventKind, resource: &str, user: &str) -> StoredEvent {
    StoredEvent {
        ts_ms,
        kind,
        resource: resource.into(),
        user: user.into(),
        overage: false,
        id_kind: 2,
        id: 7,
        reason: (kind == EventKind::Failure).then(|| Arc::from("exhausted")),
    }
}

#[test]
fn cluster_buffer_tags_events_with_their_instance_and_keeps_their_times() {
    let clock = ManualClock::new(1_700_000_100_000);
    let buf = EventBuffer::new_tagged(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
    let a = [
        stored(1_700_000_098_000, EventKind::Borrow, "cad", "ann"),
        stored(1_700_000_099_000, EventKind::Return, "cad", "ann"),
    ];
    assert_eq!(buf.record_stored("host-a", &a), 2);
    // Older than the newest stored: clamped forward so the rings stay ordered.
    let b = [
        stored(1_700_000_098_500, EventKind::Borrow, "cad", "bob"),
        stored(1_700_000_099_500, EventKind::Failure, "cad", "cy"),
    ];
    assert_eq!(buf.record_stored("host-b", &b), 2);
    // Past retention: dropped.
    assert_eq!(
        buf.record_stored("host-b", &[stored(1, EventKind::Borrow, "cad", "old")]),
        0
    );

    let all = buf.recent_events(60, 10, &EventFilter::default());
    let seen: Vec<(u64, &str, &str)> = all
        .iter()
        .map(|e| (e.ts_ms, &*e.user, e.instance.as_deref().unwrap()))
        .collect();
    assert_eq!(
        seen,
        vec![
            (1_700_000_099_500, "cy", "host-b"),
            (1_700_000_099_000, "ann", "host-a"),
            (1_700_000_099_000, "bob", "host-b"),
            (1_700_000_098_000, "ann", "host-a"),
        ]
    );
    assert_eq!(all[2].borrow_id.as_deref(), Some("7"));
    let only_b = EventFilter {
        instance: Some("host-b".into()),
        ..Default::default()
    };
    let s = buf.summarize(60, &only_b);
    assert_eq!(
        (s.totals.borrows, s.totals.failures, s.totals.returns),
        (1, 1, 0)
    );
    assert_eq!(buf.instance_levels("host-b"), vec![(Arc::from("cad"), 1)]);
    assert!(buf.instance_levels("host-a").is_empty());
    let unknown = EventFilter {
        instance: Some("nobody".into()),
        ..Default::default()
    };
    assert!(buf.recent_events(60, 10, &unknown).is_empty());
    assert_eq!(buf.summarize(60, &EventFilter::default()).totals.borrows, 2);
    assert_eq!(
        buf.instance_names(),
        vec![Arc::<str>::from("host-a"), Arc::from("host-b")]
    );
}

#[test]
fn stored_events_read_back_with_their_ids_and_report_losses() {
    let clock = ManualClock::new(1_700_000_000_000);
    let config = BufferConfig {
        max_borrows: 2,
        ..BufferConfig::default()
    };
    let buf = EventBuffer::new(config, Arc::new(clock.clone())).unwrap();
    let start = buf.cursor();
    for i in 0..3 {
        buf.record(&Event::borrow("cad", "ann").borrow_id(format!("{i}")));
    }
    buf.record(&Event::failure("cad", "bob", "exhausted"));
    let (events, lost, next) = buf.stored_after(start, 10);
    assert_eq!(lost, 1);
    assert_eq!(events.len(), 3);
    assert_eq!((events[0].id_kind, events[0].id), (2, 1));
    assert_eq!(events[2].reason.as_deref(), Some("exhausted"));
    assert_eq!(buf.stored_after(next, 10).0.len(), 0);
    // Read back into a cluster buffer: the same ids come out.
    let cluster = EventBuffer::new_tagged(BufferConfig::default(), Arc::new(clock)).unwrap();
    cluster.record_stored("me", &events);
    let ids: Vec<Option<String>> = cluster
        .recent_events(60, 10, &EventFilter::default())
        .into_iter()
        .map(|e| e.borrow_id)
        .collect();
    assert_eq!(ids, vec![None, Some("2".into()), Some("1".into())]);
}

#[test]
fn captured_events_keep_their_capture_time_order_and_are_never_dropped() {
    let (buf, clock) = buffer();
    buf.capture(Event::borrow("a", "u1"));
    clock.advance(Duration::from_secs(5));
    buf.capture(Event::returned("a", "u1"));
    clock.advance(Duration::from_secs(5));
    // Applied by this read, ten seconds after the first capture: times are the capture times.
    let events = buf.recent_events(60, 10, &EventFilter::default());
    let times: Vec<u64> = events.iter().map(|e| e.ts_ms).collect();
    assert_eq!(times, vec![T0 + 5_000, T0]);

    // More than the queue holds, with no reader in between: the overflow drains in order.
    let n = CAPTURE_QUEUE * 3 + 7;
    for i in 0..n {
        buf.capture(Event::borrow("b", format!("user-{}", i % 50)));
    }
    let stats = buf.stats();
    assert_eq!(stats.borrow_count, 1 + n as u64);
    assert_eq!(buf.levels(), vec![("a".into(), 0), ("b".into(), n as u32)]);
}

#[test]
fn captures_from_many_threads_all_land() {
    let buf = Arc::new(
        EventBuffer::new(
            BufferConfig::default(),
            Arc::new(crate::clock::SystemClock::new()),
        )
        .unwrap(),
    );
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let buf = buf.clone();
            std::thread::spawn(move || {
                for i in 0..5_000 {
                    buf.capture(Event::borrow("gpu", "u").borrow_id(format!("{t}-{i}")));
                    if i % 1_000 == 0 {
                        // Readers interleave with captures.
                        let _ = buf.stats();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(buf.stats().borrow_count, 20_000);
    let holds = buf.hold_times(60, &EventFilter::default());
    assert_eq!(holds.resources[0].open, 20_000);
}
