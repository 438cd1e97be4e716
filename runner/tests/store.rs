//! The object-store suite, run on both backends: the local folder and S3 against the
//! in-process `s3s-fs` server with signature checking. Then what only S3 has: multipart,
//! wrong credentials, a missing bucket, the server going away, corrupt objects.
use nas_api::contract::exit_code;
use nas_api::uri::StoreUri;
use nas_runner::store::testing::{S3TestConfig, S3TestServer, TEST_SECRET_KEY};
use nas_runner::store::{
    open_object, open_store, LocalStore, ObjectStore, RetryPolicy, S3Config, S3Credentials,
    S3Store, Secret, StoreError,
};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::{Duration, Instant};

fn server(dir: &Path) -> S3TestServer {
    let s = S3TestServer::start(&dir.join("s3")).expect("start the S3 test server");
    s.create_bucket("nas-test").unwrap();
    s
}

/// Deterministic pseudo-random bytes (xorshift), so that parts differ from each other.
fn payload(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The semantics both backends share.
fn suite(store: &dyn ObjectStore, scratch: &Path) {
    // put / get / overwrite / empty objects
    store.put("a/1", b"one").unwrap();
    assert_eq!(store.get("a/1").unwrap(), b"one");
    store.put("a/1", b"uno").unwrap();
    assert_eq!(store.get("a/1").unwrap(), b"uno");
    store.put("empty", b"").unwrap();
    assert_eq!(store.get("empty").unwrap(), b"");

    // missing objects
    match store.get("a/missing") {
        Err(StoreError::NotFound { key, .. }) => assert_eq!(key, "a/missing"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(store.get_opt("a/missing").unwrap(), None);
    assert_eq!(store.get_opt("a/1").unwrap().as_deref(), Some(&b"uno"[..]));
    assert!(store.exists("a/1").unwrap());
    assert!(!store.exists("a/missing").unwrap());
    // A prefix is not an object. s3s-fs keeps objects as files and answers a GET of a folder
    // differently from S3 (which says NoSuchKey), so this holds only for the local backend here.
    if store.describe().starts_with("file://") {
        assert!(store.get("a").unwrap_err().is_not_found());
        assert!(!store.exists("a").unwrap());
    }

    // list: byte-wise sorted, plain string prefixes
    for k in [
        "b/2",
        "a/10",
        "a/2",
        "a-x",
        "score/shard-00002.jsonl",
        "score/shard-00001.jsonl",
        "score/shard-00001._SUCCESS",
    ] {
        store.put(k, k.as_bytes()).unwrap();
    }
    assert_eq!(store.list("a/").unwrap(), ["a/1", "a/10", "a/2"]);
    assert_eq!(store.list("a").unwrap(), ["a-x", "a/1", "a/10", "a/2"]);
    assert_eq!(
        store.list("score/shard-00001").unwrap(),
        ["score/shard-00001._SUCCESS", "score/shard-00001.jsonl"]
    );
    assert_eq!(
        store.list("").unwrap(),
        [
            "a-x",
            "a/1",
            "a/10",
            "a/2",
            "b/2",
            "empty",
            "score/shard-00001._SUCCESS",
            "score/shard-00001.jsonl",
            "score/shard-00002.jsonl"
        ]
    );
    assert!(store.list("nothing/").unwrap().is_empty());

    // delete, twice
    store.delete("b/2").unwrap();
    store.delete("b/2").unwrap();
    assert!(!store.exists("b/2").unwrap());
    assert!(store.list("b/").unwrap().is_empty());

    // files
    let src = scratch.join("src.bin");
    let data = payload(300_000, 1);
    std::fs::write(&src, &data).unwrap();
    store.put_file("files/x.bin", &src).unwrap();
    let dest = scratch.join("out/deeper/x.bin");
    store.get_to_file("files/x.bin", &dest).unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), data);
    assert!(store
        .get_to_file("files/missing", &scratch.join("m.bin"))
        .unwrap_err()
        .is_not_found());
    assert!(!scratch.join("m.bin").exists());
    // No temporary files left beside the download.
    let leftovers: Vec<_> = std::fs::read_dir(scratch.join("out/deeper"))
        .unwrap()
        .collect();
    assert_eq!(leftovers.len(), 1);

    // keys both backends refuse
    for bad in ["", "/abs", "a//b", "../up", "dir/", "a/./b"] {
        assert!(
            matches!(store.put(bad, b"x"), Err(StoreError::InvalidKey { .. })),
            "{bad:?}"
        );
        assert!(
            matches!(store.get(bad), Err(StoreError::InvalidKey { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(
        store.list("../"),
        Err(StoreError::InvalidKey { .. })
    ));
}

#[test]
fn local_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    suite(&store, dir.path());
    // Temporary files are never listed, and none are left behind.
    let all = store.list("").unwrap();
    assert!(all.iter().all(|k| !k.contains(".nas-tmp.")));
}

#[test]
fn s3_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let store = S3Store::open(srv.config("nas-test")).unwrap();
    suite(&store, dir.path());
    assert!(
        store.describe().starts_with("s3://nas-test/"),
        "{}",
        store.describe()
    );
}

#[test]
fn s3_store_rooted_at_a_prefix_sees_only_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let cfg = srv.config("nas-test");
    let uri = StoreUri::parse("s3://nas-test/runs/ns/search/uid-1").unwrap();
    let store = open_store(&uri, Some(&cfg)).unwrap();
    store.put("spec.json", b"{}").unwrap();
    let root = open_store(&StoreUri::parse("s3://nas-test").unwrap(), Some(&cfg)).unwrap();
    assert_eq!(root.list("").unwrap(), ["runs/ns/search/uid-1/spec.json"]);
    assert_eq!(store.list("").unwrap(), ["spec.json"]);
    let (holder, key) = open_object(&uri.join("spec.json"), Some(&cfg)).unwrap();
    assert_eq!(key, "runs/ns/search/uid-1/spec.json");
    assert_eq!(holder.get(&key).unwrap(), b"{}");
}

#[test]
fn local_store_opens_from_file_uris_and_plain_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out");
    let uri = StoreUri::parse(&format!("file://{}", path.display())).unwrap();
    let store = open_store(&uri, None).unwrap();
    store.put("x/spec.json", b"{}").unwrap();
    let (holder, key) = open_object(
        &StoreUri::parse(&path.join("x/spec.json").display().to_string()).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(key, "spec.json");
    assert_eq!(holder.get(&key).unwrap(), b"{}");
    // A file where the folder should be: the local counterpart of a missing bucket.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let err = LocalStore::open(dir.path().join("file"))
        .err()
        .expect("a file is not a store");
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
}

fn multipart_round_trip(store: &dyn ObjectStore, scratch: &Path) {
    let data = payload(20_000_000, 7);
    let src = scratch.join("big.bin");
    std::fs::write(&src, &data).unwrap();
    store.put_file("data/train/shard-00000.bin", &src).unwrap();
    let dest = scratch.join("big.out");
    store
        .get_to_file("data/train/shard-00000.bin", &dest)
        .unwrap();
    assert_eq!(
        Sha256::digest(std::fs::read(&dest).unwrap()),
        Sha256::digest(&data)
    );
    assert_eq!(
        store.get("data/train/shard-00000.bin").unwrap().len(),
        data.len()
    );
}

#[test]
fn s3_multipart_upload_of_20_mb_with_5_mib_parts() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let mut cfg = srv.config("nas-test");
    cfg.part_size = 5 * 1024 * 1024;
    cfg.multipart_threshold = 5 * 1024 * 1024;
    cfg.upload_concurrency = 2;
    let store = S3Store::open(cfg).unwrap();
    multipart_round_trip(&store, dir.path());
    // The server assembled exactly our bytes.
    let on_disk = std::fs::read(srv.root().join("nas-test/data/train/shard-00000.bin")).unwrap();
    assert_eq!(
        Sha256::digest(on_disk),
        Sha256::digest(payload(20_000_000, 7))
    );
}

#[test]
fn local_store_copies_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path().join("store")).unwrap();
    multipart_round_trip(&store, dir.path());
}

#[test]
fn wrong_credentials_are_a_config_error_naming_bucket_and_endpoint_but_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let mut cfg = srv.config("nas-test");
    let secret = "wrong-secret-do-not-print-9f8e7d";
    cfg.credentials = S3Credentials::Static {
        access_key_id: "nas-test-access-key".into(),
        secret_access_key: Secret::new(secret),
        session_token: None,
    };
    let err = S3Store::open(cfg.clone())
        .err()
        .expect("wrong credentials must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert_eq!(err.outcome().exit_code(), exit_code::INVALID_CONFIG);
    assert!(
        msg.contains("nas-test") && msg.contains(&srv.endpoint()),
        "{msg}"
    );
    assert!(
        !msg.contains(secret) && !format!("{err:?}").contains(secret),
        "{msg}"
    );
    assert!(!msg.contains(TEST_SECRET_KEY), "{msg}");

    // Without the check at open, the first operation fails the same way, without retries.
    cfg.verify_bucket = false;
    let store = S3Store::open(cfg).unwrap();
    let err = store.put("x", b"1").unwrap_err();
    assert!(
        matches!(err, StoreError::Config(ref m) if m.contains("nas-test") && !m.contains(secret)),
        "{err:?}"
    );
}

#[test]
fn missing_bucket_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let err = S3Store::open(srv.config("no-such-bucket"))
        .err()
        .expect("missing bucket must fail");
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        msg.contains("no-such-bucket")
            && msg.contains("does not exist")
            && msg.contains(&srv.endpoint()),
        "{msg}"
    );

    let mut cfg = srv.config("no-such-bucket");
    cfg.verify_bucket = false;
    let store = S3Store::open(cfg).unwrap();
    // (s3s-fs answers a GET in a missing bucket with NoSuchKey, unlike S3; LIST is faithful.)
    let err = store.list("").unwrap_err();
    assert!(
        matches!(err, StoreError::Config(ref m) if m.contains("no-such-bucket")),
        "{err:?}"
    );
}

#[test]
fn server_stopped_mid_run_is_retried_then_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = server(dir.path());
    let cfg = srv.config("nas-test");
    let policy = cfg.retry;
    let store = S3Store::open(cfg).unwrap();
    store.put("score/shard-00000.jsonl", b"{}\n").unwrap();
    srv.stop();
    let started = Instant::now();
    let err = store.get("score/shard-00000.jsonl").unwrap_err();
    let took = started.elapsed();
    let msg = err.to_string();
    assert!(matches!(err, StoreError::Transient(_)), "{err:?}");
    assert_ne!(err.outcome().exit_code(), exit_code::INVALID_CONFIG);
    assert!(
        msg.contains(&format!("after {} attempts", policy.max_attempts)),
        "{msg}"
    );
    assert!(
        msg.contains("get score/shard-00000.jsonl") && msg.contains(&srv.endpoint()),
        "{msg}"
    );
    // Bounded: the retry delays plus a few refused connections, with a wide margin.
    assert!(
        took < policy.max_total_delay() + Duration::from_secs(20),
        "took {took:?}"
    );
    assert!(matches!(
        store.put("x", b"1"),
        Err(StoreError::Transient(_))
    ));
}

#[test]
fn server_back_within_the_retries_is_transparent() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = server(dir.path());
    let mut cfg = srv.config("nas-test");
    // Enough attempts to outlast the outage below whatever the jitter draws.
    cfg.retry = RetryPolicy {
        max_attempts: 60,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    let store = S3Store::open(cfg).unwrap();
    store.put("k", b"v").unwrap();
    srv.stop();
    let restarter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        srv.restart().unwrap();
        srv
    });
    assert_eq!(store.get("k").unwrap(), b"v");
    let _srv = restarter.join().unwrap();
}

#[test]
fn corrupted_objects_are_detected_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let store = S3Store::open(srv.config("nas-test")).unwrap();
    store.put("select/topk.json", b"[1,2,3]").unwrap();
    // Flip bytes behind the store's back, keeping the length.
    std::fs::write(srv.root().join("nas-test/select/topk.json"), b"[1,2,4]").unwrap();
    match store.get("select/topk.json") {
        Err(StoreError::Corrupt {
            key,
            expected,
            actual,
            ..
        }) => {
            assert_eq!(key, "select/topk.json");
            assert_eq!(expected, hex::encode(Sha256::digest(b"[1,2,3]")));
            assert_eq!(actual, hex::encode(Sha256::digest(b"[1,2,4]")));
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let dest = dir.path().join("topk.json");
    assert!(matches!(
        store.get_to_file("select/topk.json", &dest),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(
        !dest.exists(),
        "a corrupt download must not be renamed into place"
    );
}

#[test]
fn s3_store_can_be_called_from_inside_an_async_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let store = S3Store::open(srv.config("nas-test")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        store.put("k", b"v").unwrap();
        assert_eq!(store.get("k").unwrap(), b"v");
    });
    // Dropping the store inside a runtime must not panic either.
    rt.block_on(async move { drop(store) });
}

#[test]
fn bad_ca_bundles_are_config_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let srv = server(dir.path());
    let mut cfg = srv.config("nas-test");
    cfg.ca_bundle = Some(dir.path().join("missing.pem"));
    let err = S3Store::open(cfg.clone()).err().unwrap();
    assert!(
        matches!(err, StoreError::Config(ref m) if m.contains("missing.pem")),
        "{err:?}"
    );
    let pem = dir.path().join("bad.pem");
    std::fs::write(
        &pem,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    cfg.ca_bundle = Some(pem);
    let err = S3Store::open(cfg.clone()).err().unwrap();
    assert!(
        matches!(err, StoreError::Config(ref m) if m.contains("bad.pem")),
        "{err:?}"
    );
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    cfg.ca_bundle = Some(empty);
    assert!(matches!(S3Store::open(cfg), Err(StoreError::Config(_))));
}

#[test]
fn config_from_uri_keeps_explicit_settings() {
    let mut cfg = S3Config::new("ignored");
    cfg.verify_bucket = false;
    cfg.endpoint = Some("http://127.0.0.1:9".into());
    cfg.region = Some("us-east-1".into());
    let store = open_store(&StoreUri::parse("s3://real-bucket/p").unwrap(), Some(&cfg)).unwrap();
    assert!(
        store.describe().starts_with("s3://real-bucket/p/"),
        "{}",
        store.describe()
    );
}
