//! Upload and download throughput (MB/s) of the object store: S3 against the in-process
//! `s3s-fs` server on 127.0.0.1, the local-folder backend, and a plain `std::fs::copy` of the
//! same file as the disk's baseline. Every round runs all five transfers one after the other
//! (interleaved, so a slow spell of the machine hits them alike); the medians over the rounds
//! count. Prints one JSON object.
//!
//! `cargo bench -p nas-runner --features test-support --bench store_bench -- [MB] [ROUNDS]`
//! (default 256 MB, 5 rounds).
use nas_runner::stages::bench_cmd::median;
use nas_runner::store::testing::{S3TestConfig, S3TestServer};
use nas_runner::store::{LocalStore, ObjectStore, S3Store};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mb: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let rounds: usize = args
        .get(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(5)
        .max(1);
    let bytes = mb * 1_000_000;

    let dir = tempfile::tempdir()?;
    let src = dir.path().join("src.bin");
    // Incompressible-ish content, written once.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&src, &data)?;
    drop(data);

    let srv = S3TestServer::start(&dir.path().join("s3"))?;
    srv.create_bucket("bench")?;
    let s3 = S3Store::open(srv.config("bench"))?;
    let local = LocalStore::open(dir.path().join("local"))?;
    let copy_dest = dir.path().join("copy.bin");
    let down = dir.path().join("down.bin");

    // Seconds per transfer: fs copy, S3 up, S3 down, local up, local down.
    let mut times: [Vec<f64>; 5] = Default::default();
    for _ in 0..rounds {
        times[0].push(timed(|| Ok(std::fs::copy(&src, &copy_dest).map(drop)?))?);
        times[1].push(timed(|| Ok(s3.put_file("bench/object.bin", &src)?))?);
        times[2].push(timed(|| Ok(s3.get_to_file("bench/object.bin", &down)?))?);
        times[3].push(timed(|| Ok(local.put_file("bench/object.bin", &src)?))?);
        times[4].push(timed(|| Ok(local.get_to_file("bench/object.bin", &down)?))?);
    }
    let rate = |t: &mut Vec<f64>| (bytes as f64 / 1e6 / median(t) * 10.0).round() / 10.0;
    let [fs, s3_up, s3_down, local_up, local_down] = &mut times;
    println!(
        "{{\"mb\":{mb},\"rounds\":{rounds},\"statistic\":\"median\",\"fs_copy_mb_s\":{},\"s3_upload_mb_s\":{},\"s3_download_mb_s\":{},\"local_upload_mb_s\":{},\"local_download_mb_s\":{}}}",
        rate(fs),
        rate(s3_up),
        rate(s3_down),
        rate(local_up),
        rate(local_down)
    );
    Ok(())
}

type R<T> = Result<T, Box<dyn std::error::Error>>;

/// Seconds `f` takes.
fn timed(f: impl FnOnce() -> R<()>) -> R<f64> {
    let t = Instant::now();
    f()?;
    Ok(t.elapsed().as_secs_f64())
}
