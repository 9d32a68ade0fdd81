//! The Rust peer for bench/global-limit.bench.ts: Kuadrant's limitador crate (the library behind
//! Limitador's server) with its Redis storage, driven like Sluice's limiter is there — 2 limiters,
//! each with its own storage and connection, sharing one limit on one redis-server, each with
//! `in_flight` decisions outstanding per turn of the loop (the bench's PER_TICK), for `seconds`.
//!
//!   limitador-peer <cached|strict> <redis-url> <limit per second> <seconds> <in_flight> <namespace>
//!
//! `cached` is CachedRedisStorage (counters decided locally, deltas flushed to Redis in batches:
//! like Sluice's lease mode); `strict` is AsyncRedisStorage (one Redis script per decision).
//! One tokio thread (current_thread runtime), like the one Node thread on the other side. The
//! harness measures its own CPU with getrusage around the loop and prints one JSON line.
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use limitador::limit::{Context, Limit, Namespace};
use limitador::storage::redis::{AsyncRedisStorage, CachedRedisStorageBuilder};
use limitador::storage::AsyncCounterStorage;
use limitador::AsyncRateLimiter;

fn cpu_seconds() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

async fn limiter(mode: &str, url: &str, ns: &str, limit: u64) -> AsyncRateLimiter {
    let storage: Box<dyn AsyncCounterStorage> = match mode {
        // Limitador's defaults (flushing period 1 s, batches of 100, 10 000 cached counters).
        "cached" => Box::new(CachedRedisStorageBuilder::new(url).build().await.expect("redis")),
        "strict" => Box::new(AsyncRedisStorage::new(url).await.expect("redis")),
        m => panic!("unknown mode {m}: cached | strict"),
    };
    let l = AsyncRateLimiter::new_with_storage(storage);
    l.add_limit(Limit::new(ns, limit, 1, vec![], vec![]));
    l
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() != 7 {
        eprintln!("usage: limitador-peer <cached|strict> <redis-url> <limit> <seconds> <in_flight> <namespace>");
        std::process::exit(2);
    }
    let (mode, url, ns) = (a[1].as_str(), a[2].as_str(), a[6].as_str());
    let limit: u64 = a[3].parse().expect("limit");
    let seconds: f64 = a[4].parse().expect("seconds");
    let in_flight: usize = a[5].parse().expect("in_flight");
    let limiters = [
        Arc::new(limiter(mode, url, ns, limit).await),
        Arc::new(limiter(mode, url, ns, limit).await),
    ];
    let namespace = Namespace::from(ns);

    let cpu0 = cpu_seconds();
    let started = Instant::now();
    let end = started + Duration::from_secs_f64(seconds);
    let runs = limiters.iter().map(|l| {
        let namespace = namespace.clone();
        async move {
            let ctx = Context::default();
            let (mut decisions, mut admitted, mut errors) = (0u64, 0u64, 0u64);
            let mut lat: Vec<f64> = Vec::with_capacity(1 << 20);
            while Instant::now() < end {
                let batch = (0..in_flight).map(|_| async {
                    let t0 = Instant::now();
                    let r = l.check_rate_limited_and_update(&namespace, &ctx, 1).await;
                    (t0.elapsed().as_secs_f64() * 1e3, r)
                });
                for (ms, r) in join_all(batch).await {
                    lat.push(ms);
                    match r {
                        Ok(c) => {
                            decisions += 1;
                            if !c.limited {
                                admitted += 1;
                            }
                        }
                        Err(_) => errors += 1,
                    }
                }
                tokio::task::yield_now().await;
            }
            (decisions, admitted, errors, lat)
        }
    });
    let results = join_all(runs).await;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let (mut decisions, mut admitted, mut errors) = (0u64, 0u64, 0u64);
    let mut lat = Vec::new();
    for (d, ad, e, l) in results {
        decisions += d;
        admitted += ad;
        errors += e;
        lat.extend(l);
    }
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap());
    let pct = |p: f64| lat.get(((p / 100.0) * lat.len() as f64) as usize).or(lat.last()).copied().unwrap_or(f64::NAN);
    println!(
        "{{\"ops\":{decisions},\"admitted\":{admitted},\"errors\":{errors},\"seconds\":{elapsed},\"cpuSeconds\":{cpu},\"p50Ms\":{},\"p99Ms\":{}}}",
        pct(50.0),
        pct(99.0)
    );
    // Let the cached storage flush its last deltas before the process ends.
    tokio::time::sleep(Duration::from_millis(1_200)).await;
}
