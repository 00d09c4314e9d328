//! Decode, judge and answer every review in a directory, many times: the
//! webhook's work per request without the network. Prints µs per review.
//!
//!   cargo run --release -p paved-admission --example review_loop -- DIR [ROUNDS]

use std::time::Instant;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use paved_admission::Admission;
use paved_admission::cluster::ClusterState;
use paved_admission::review::AdmissionReview;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().ok_or("usage: review_loop DIR [ROUNDS]")?;
    let rounds: usize = args.next().map(|r| r.parse()).transpose()?.unwrap_or(50);
    let mut bodies = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        bodies.push(std::fs::read(entry?.path())?);
    }
    let admission = Admission::new(Default::default(), None, vec!["paved-system".into()])?;
    let cluster = ClusterState::default();
    let now = paved_core::Timestamp::now();
    let (mut decode, mut judge, mut answer) = (0u128, 0u128, 0u128);
    let mut denied = 0;
    for _ in 0..rounds {
        for body in &bodies {
            let t0 = Instant::now();
            let (version, request) = AdmissionReview::decode(body)?;
            let t1 = Instant::now();
            let verdict = admission.review(&request, &cluster, now);
            denied += usize::from(!verdict.allowed());
            let t2 = Instant::now();
            let json =
                serde_json::to_vec(&AdmissionReview::answer(version, verdict.into_response(request.uid.clone())))?;
            std::hint::black_box(json);
            let t3 = Instant::now();
            decode += (t1 - t0).as_nanos();
            judge += (t2 - t1).as_nanos();
            answer += (t3 - t2).as_nanos();
        }
    }
    let n = (rounds * bodies.len()) as f64;
    println!(
        "{} reviews x {rounds}: decode {:.1} µs, judge {:.1} µs, answer {:.1} µs per review ({} denied)",
        bodies.len(),
        decode as f64 / n / 1e3,
        judge as f64 / n / 1e3,
        answer as f64 / n / 1e3,
        denied / rounds
    );
    Ok(())
}
