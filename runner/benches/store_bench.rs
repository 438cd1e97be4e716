//! Upload and download throughput (MB/s) of the object store: S3 against the in-process
//! `s3s-fs` server on 127.0.0.1, the local-folder backend, and a plain `std::fs::copy` of the
//! same file as the disk's baseline. Prints one JSON object.
//!
//! `cargo bench -p nas-runner --features test-support --bench store_bench -- [MB] [ROUNDS]`
//! (default 256 MB, 3 rounds; the best round counts). Add `--profile dev` to reuse test builds.
use nas_runner::store::testing::{S3TestConfig, S3TestServer};
use nas_runner::store::{LocalStore, ObjectStore, S3Store};
use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let mb: usize = args.first().map(|s| s.parse()).transpose()?.unwrap_or(256);
    let rounds: usize = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
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
    let baseline = best(rounds, || {
        std::fs::copy(&src, &copy_dest)?;
        Ok(())
    })?;
    let (s3_up, s3_down) = up_down(&s3, &src, dir.path(), rounds)?;
    let (local_up, local_down) = up_down(&local, &src, dir.path(), rounds)?;
    let rate = |secs: f64| (bytes as f64 / 1e6 / secs * 10.0).round() / 10.0;
    println!(
        "{{\"mb\":{mb},\"rounds\":{rounds},\"fs_copy_mb_s\":{},\"s3_upload_mb_s\":{},\"s3_download_mb_s\":{},\"local_upload_mb_s\":{},\"local_download_mb_s\":{}}}",
        rate(baseline),
        rate(s3_up),
        rate(s3_down),
        rate(local_up),
        rate(local_down)
    );
    Ok(())
}

type R<T> = Result<T, Box<dyn std::error::Error>>;

fn up_down(store: &dyn ObjectStore, src: &Path, scratch: &Path, rounds: usize) -> R<(f64, f64)> {
    let up = best(rounds, || Ok(store.put_file("bench/object.bin", src)?))?;
    let dest = scratch.join("down.bin");
    let down = best(rounds, || Ok(store.get_to_file("bench/object.bin", &dest)?))?;
    Ok((up, down))
}

/// The fastest of `rounds` runs, in seconds.
fn best(rounds: usize, mut f: impl FnMut() -> R<()>) -> R<f64> {
    let mut best = f64::INFINITY;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        f()?;
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(best)
}
