//! Hot-path and query costs of the event buffer, and its memory per event at full caps.
//!
//! `cargo bench -p realtime-layer --bench buffer`

use criterion::{black_box, criterion_group, BatchSize, Criterion};
use realtime_layer::{
    BufferConfig, Event, EventBuffer, EventFilter, ManualClock, Realtime, ResourceStatus,
    SystemClock,
};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Captures per timed batch in the request-path benches (the capture queue holds 512).
const BATCH: u64 = 512;

/// Counts live heap bytes, so "bytes per event" includes everything the buffer allocates.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const T0: u64 = 1_800_000_000_000;
const SIX_HOURS_MS: u64 = 6 * 3600 * 1000;
const TOOLS: [&str; 6] = [
    "ECU Development Suite",
    "GreenHills Multi IDE",
    "AUTOSAR Configuration Tool",
    "CAN Bus Analyzer Pro",
    "Model-Based Design Studio",
    "Vector - DaVinci Configurator SE",
];

/// The traffic a memory report fills the buffer with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mix {
    /// Events without borrow ids (no hold tracking).
    WithoutIds,
    /// license-demo's traffic: every borrow has a UUID id and is returned by that id (hold
    /// times measured for every return).
    LicenseDemo,
}

/// 100,000 borrows, 100,000 returns and 10,000 failures spread evenly over six hours, 6
/// resources, 1,000 users: the default caps exactly full.
fn fill(mix: Mix, record: impl Fn(&Event), clock: &ManualClock) {
    let users: Vec<String> = (0..1000).map(|i| format!("user-{i:04}")).collect();
    let total = 210_000u64;
    let uuid = |n: u64| format!("{n:08x}-1111-4222-8333-{n:012x}");
    let (mut borrowed, mut returned) = (0u64, 0u64);
    for i in 0..total {
        clock.set(T0 + i * SIX_HOURS_MS / total);
        let user = users[(i % 1000) as usize].clone();
        let event = match i % 21 {
            20 => Event::failure(TOOLS[(i % 6) as usize], user, "exhausted"),
            n if n % 2 == 0 => {
                let tool = TOOLS[(borrowed % 6) as usize];
                let e = Event::borrow(tool, user).overage(i % 7 == 0);
                borrowed += 1;
                match mix {
                    Mix::WithoutIds => e,
                    Mix::LicenseDemo => e.borrow_id(uuid(borrowed)),
                }
            }
            _ => {
                // The oldest borrow still out comes back (a hold of about one event slot).
                returned += 1;
                let e = Event::returned(TOOLS[(returned - 1) as usize % 6], user);
                match mix {
                    Mix::WithoutIds => e,
                    Mix::LicenseDemo => e.borrow_id(uuid(returned)),
                }
            }
        };
        record(&event);
    }
}

fn memory_report() {
    println!("\n== memory at full caps (6 h, 6 resources, 1,000 users) ==");
    println!("| traffic | events held | heap bytes (measured) | bytes/event all-in | buffer's own estimate | holds measured |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (mix, name) in [
        (Mix::WithoutIds, "without borrow ids"),
        (
            Mix::LicenseDemo,
            "license-demo's: UUID ids, every borrow returned, hold times on",
        ),
    ] {
        let clock = ManualClock::new(T0);
        let before = LIVE.load(Ordering::SeqCst);
        let buffer = EventBuffer::new(BufferConfig::default(), Arc::new(clock.clone())).unwrap();
        fill(mix, |e| buffer.record(e), &clock);
        let after = LIVE.load(Ordering::SeqCst);
        let stats = buffer.stats();
        let heap = (after - before) as f64;
        let holds: u64 = buffer
            .hold_times(6 * 3600, &EventFilter::default())
            .resources
            .iter()
            .map(|r| r.count)
            .sum();
        println!(
            "| {name} | {} | {heap:.0} | {:.1} | {} ({:.1}/event) | {holds} |",
            stats.total_events,
            heap / stats.total_events as f64,
            stats.memory_bytes,
            stats.memory_bytes as f64 / stats.total_events as f64
        );
    }
    println!("(the Python original: ~490 bytes/event, ~99 MB at full caps)\n");
}

fn bench_record(c: &mut Criterion) {
    let buffer = EventBuffer::new(BufferConfig::default(), Arc::new(SystemClock::new())).unwrap();
    // Full rings: every record also drops the oldest event, the steady state of a busy server.
    let warm: Vec<Event> = (0..210_000)
        .map(|i| Event::borrow(TOOLS[i % 6], format!("user-{}", i % 1000)))
        .collect();
    buffer.record_all(&warm);
    let borrow = Event::borrow("ECU Development Suite", "user-0042")
        .borrow_id("550e8400-e29b-41d4-a716-446655440000");
    let ret = Event::returned("ECU Development Suite", "user-0042")
        .borrow_id("550e8400-e29b-41d4-a716-446655440000");
    let manual = EventBuffer::new(BufferConfig::default(), Arc::new(ManualClock::new(T0))).unwrap();
    manual.record_all(&warm);
    let mut group = c.benchmark_group("record");
    group.bench_function("borrow (uuid id, full caps, manual clock)", |b| {
        b.iter(|| manual.record(black_box(&borrow)))
    });
    group.bench_function("borrow (uuid id, full caps, system clock)", |b| {
        b.iter(|| buffer.record(black_box(&borrow)))
    });
    group.bench_function("return (uuid id, full caps, system clock)", |b| {
        b.iter(|| buffer.record(black_box(&ret)))
    });
    let realtime = Realtime::builder().build().unwrap();
    realtime.buffer().record_all(&warm);
    let owned = Event::borrow(
        String::from("ECU Development Suite"),
        String::from("user-0042"),
    )
    .borrow_id(String::from("550e8400-e29b-41d4-a716-446655440000"));
    // The request path: `Realtime::record` stamps the event and queues it; the buffer applies
    // the queue when it is next read (in a server: the frame builder, every push delay).
    // Batches of `BATCH` captures are timed, then a read applies them untimed, as the builder
    // would between frames. Events are built outside the timing (the layer hands over events
    // it already owns); owned names are dropped when applied, off the request path.
    for (name, event) in [
        ("Realtime::record (static names), request path", &borrow),
        ("Realtime::record (owned names), request path", &owned),
    ] {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(BATCH);
                    let batch: Vec<Event> = (0..n).map(|_| event.clone()).collect();
                    let start = Instant::now();
                    for e in batch {
                        realtime.record(e);
                    }
                    timed += start.elapsed();
                    black_box(realtime.buffer().stats());
                    left -= n;
                }
                timed
            })
        });
    }
    // Everything one event costs the process: capture, then apply (here the queue fills and
    // the capturing thread applies it itself, every 1,024 events).
    group.bench_function(
        "Realtime::record (static names), capture + apply, no reader",
        |b| {
            b.iter_batched(
                || borrow.clone(),
                |event| realtime.record(event),
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

fn bench_queries(c: &mut Criterion) {
    let clock = ManualClock::new(T0);
    let realtime = Realtime::builder()
        .clock(clock.clone())
        .status_source(|| {
            TOOLS
                .iter()
                .map(|t| ResourceStatus::new(*t, 20, 5, 7))
                .collect()
        })
        .build()
        .unwrap();
    fill(Mix::LicenseDemo, |e| realtime.record(e.clone()), &clock);
    clock.set(T0 + SIX_HOURS_MS - 1);
    let all = EventFilter::default();
    let mut group = c.benchmark_group("query (full caps, 210k events)");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("stats 6 h window (views + stats + 100 recent)", |b| {
        b.iter(|| {
            let views = realtime.resource_views(21_600, &all);
            let stats = realtime.buffer().stats();
            let recent = realtime.buffer().recent_events(21_600, 100, &all);
            black_box((views, stats, recent))
        })
    });
    group.bench_function("stats 60 s window", |b| {
        b.iter(|| black_box(realtime.resource_views(60, &all)))
    });
    let user = EventFilter {
        user: Some("user-0042".into()),
        ..Default::default()
    };
    group.bench_function("stats 6 h window, user filter (scans events)", |b| {
        b.iter(|| black_box(realtime.resource_views(21_600, &user)))
    });
    group.bench_function("seconds series 6 h", |b| {
        b.iter(|| {
            black_box(
                realtime
                    .buffer()
                    .seconds(T0 / 1000, (T0 + SIX_HOURS_MS) / 1000, None),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench_record, bench_queries);

fn main() {
    memory_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
