//! Proof-of-work stamp benchmark (issue 6, "Strangers").
//!
//! Mints `--stamps N` stamps (default 20) at `--bits B` (default: the
//! default difficulty, `pow::DEFAULT_BITS`) for distinct 10 KiB messages and
//! prints the median, mean, minimum and maximum mint time, then times
//! `pow::verify` of one stamp over 10,000 runs (10 KiB payload: the message
//! hash plus the two work hashes) and `pow::verify_hashed` alone. It also
//! prints the CPU time per stamp, which does not depend on how busy the
//! machine is.
//!
//! `cargo bench -p mailnode --bench pow` (options after `--`).

use std::time::{Duration, Instant};

use mailnode::pow;

fn main() {
    let mut bits = pow::DEFAULT_BITS;
    let mut stamps = 20usize;
    let args: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--bits" => {
                bits = args[i + 1].parse().expect("--bits B");
                i += 1;
            }
            "--stamps" => {
                stamps = args[i + 1].parse().expect("--stamps N");
                i += 1;
            }
            _ => {} // cargo bench passes --bench
        }
        i += 1;
    }
    let recipient = libp2p::identity::Keypair::generate_ed25519()
        .public()
        .to_peer_id();
    let now = u64::try_from(chrono::Utc::now().timestamp()).expect("after 1970");
    let payload = vec![b'x'; 10 * 1024];

    let cpu_before = cpu_seconds();
    let mut times = Vec::with_capacity(stamps);
    let mut minted = Vec::with_capacity(stamps);
    for n in 0..stamps {
        let id = [u8::try_from(n % 256).expect("byte"); 16];
        let started = Instant::now();
        let stamp = pow::mint(&recipient, &id, &payload, bits, now).expect("mint");
        let took = started.elapsed();
        println!("stamp {n:2}: {:8.3} s", took.as_secs_f64());
        times.push(took);
        minted.push((id, stamp));
    }
    times.sort();
    let total: Duration = times.iter().sum();
    println!(
        "mint at {bits} bits over {stamps} stamps: median {:.3} s, mean {:.3} s, min {:.3} s, max {:.3} s",
        times[times.len() / 2].as_secs_f64(),
        total.as_secs_f64() / stamps as f64,
        times[0].as_secs_f64(),
        times[times.len() - 1].as_secs_f64(),
    );

    if let (Some(before), Some(after)) = (cpu_before, cpu_seconds()) {
        println!(
            "mint CPU time: {:.3} s per stamp on average (the wall times above include waiting \
             for the CPU on a loaded machine)",
            (after - before) / stamps as f64
        );
    }

    let (id, stamp) = &minted[0];
    let runs = 10_000u32;
    let started = Instant::now();
    for _ in 0..runs {
        pow::verify(stamp, &recipient, id, &payload, bits, now).expect("verify");
    }
    let per_verify = started.elapsed() / runs;
    let message = pow::message_hash(id, &payload);
    let started = Instant::now();
    for _ in 0..runs {
        pow::verify_hashed(stamp, &recipient, &message, bits, now).expect("verify");
    }
    let per_hashed = started.elapsed() / runs;
    println!(
        "verify: {:.1} µs with the 10 KiB message hash, {:.2} µs for the stamp alone",
        per_verify.as_secs_f64() * 1e6,
        per_hashed.as_secs_f64() * 1e6
    );
}

/// User CPU time of this process so far, in seconds (Linux: field 14 of
/// `/proc/self/stat`, in clock ticks of 1/100 s), or `None` elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')')?.1;
    let utime: f64 = rest.split_whitespace().nth(11)?.parse().ok()?;
    Some(utime / 100.0)
}
