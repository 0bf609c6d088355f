//! The client's sync engine and wire format (`opfs_media::sync`) driving the real reference
//! server over HTTP: uploads, a lost response and its retry, edits on two devices (a 412
//! resolved last-writer-wins), a delete seen by the other device, and convergence.

use std::collections::BTreeMap;

use opfs_media::asset::SyncStatus;
use opfs_media::sync::engine::{Config, Engine, LocalAsset, Meta, Outcome, SyncState};
use opfs_media::sync::protocol::{outcome, to_http, Body};
use opfs_media_server::{auth::AuthMode, db::Db, router, storage, AppState};
use sha2::{Digest, Sha256};

async fn start_server() -> (String, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("opfs-e2e-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::connect(&format!("sqlite://{}/m.db?mode=rwc", dir.display())).await.unwrap();
    let store = storage::open(&format!("file://{}/objects", dir.display())).unwrap();
    let state = AppState::new(db, store, AuthMode::DevInsecure, 1 << 30).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state, &[])).await.unwrap() });
    (base, dir)
}

struct Device {
    engine: Engine,
    bytes: BTreeMap<String, Vec<u8>>,
    http: reqwest::Client,
    base: String,
    /// Drop the response of the next request (the server still applies it).
    lose_next_response: bool,
}

impl Device {
    fn new(base: &str, seed: u64) -> Self {
        let cfg = Config { base_delay_ms: 1, max_delay_ms: 5, ..Config::default() };
        Device {
            engine: Engine::new(SyncState::default(), cfg, seed),
            bytes: BTreeMap::new(),
            http: reqwest::Client::new(),
            base: format!("{base}/api"),
            lose_next_response: false,
        }
    }

    fn import(&mut self, id: &str, data: &[u8], name: &str, now: i64) {
        self.bytes.insert(id.into(), data.to_vec());
        self.engine.local_import(LocalAsset {
            id: id.into(),
            sha256: hex::encode(Sha256::digest(data)),
            meta: Meta { name: name.into(), tags: vec![] },
            updated_at: now,
            remote_version: None,
            status: SyncStatus::Pending,
            error: None,
            has_bytes: true,
        });
    }

    /// Sends everything the engine wants until it is idle.
    async fn sync(&mut self, mut now: i64) {
        self.engine.request_pull();
        for _ in 0..200 {
            let sends = self.engine.poll(now);
            if sends.is_empty() {
                if self.engine.is_idle() {
                    return;
                }
                now = self.engine.next_wakeup().unwrap_or(now + 1).max(now + 1);
                continue;
            }
            for (id, req) in sends {
                let h = to_http(&req);
                let method = reqwest::Method::from_bytes(h.method.as_bytes()).unwrap();
                let mut rb = self.http.request(method, format!("{}{}", self.base, h.path)).bearer_auth("dev:alice");
                for (k, v) in &h.headers {
                    rb = rb.header(*k, v);
                }
                rb = match &h.body {
                    Body::Empty => rb,
                    Body::Json(j) => rb.body(j.clone()),
                    Body::AssetBytes(asset) => {
                        rb.header("content-type", "application/octet-stream").body(self.bytes[asset].clone())
                    }
                };
                let res = rb.send().await.unwrap();
                let status = res.status().as_u16();
                let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                let body = res.bytes().await.unwrap();
                let o = if std::mem::take(&mut self.lose_next_response) {
                    Outcome::Network
                } else {
                    outcome(&req, status, retry_after, &body)
                };
                self.engine.handle(id, o, now);
            }
        }
        panic!("did not become idle: {:?}", self.engine.state().outbox);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_devices_converge_through_the_real_server() {
    let (base, dir) = start_server().await;
    let mut a = Device::new(&base, 1);
    let mut b = Device::new(&base, 2);
    let id = |n: u32| format!("0190f0c2-7a0e-7cc0-8000-{n:012}");

    // Device A imports three files; the first upload's response is lost and retried.
    for n in 1..=3 {
        a.import(&id(n), format!("bytes {n}").as_bytes(), &format!("f{n}.txt"), 1_000);
    }
    a.lose_next_response = true;
    a.sync(2_000).await;
    for n in 1..=3 {
        assert_eq!(a.engine.state().assets[&id(n)].status, SyncStatus::Synced);
    }
    let listed: serde_json::Value = reqwest::Client::new()
        .get(format!("{base}/api/media/assets"))
        .bearer_auth("dev:alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["assets"].as_array().unwrap().len(), 3, "the retried upload did not make a copy");
    let objects = std::fs::read_dir(dir.join("objects/alice")).unwrap().count();
    assert_eq!(objects, 3, "one stored object per asset");

    // Device B pulls: the three appear as remote assets (metadata only).
    b.sync(3_000).await;
    assert_eq!(b.engine.state().assets.len(), 3);
    assert!(b.engine.state().assets.values().all(|x| !x.has_bytes && x.status == SyncStatus::Synced));

    // Both edit asset 2; B's edit is later and wins on both devices. B deletes asset 3.
    a.engine.local_edit(&id(2), Meta { name: "from-a.txt".into(), tags: vec![] }, 4_000);
    b.engine.local_edit(&id(2), Meta { name: "from-b.txt".into(), tags: vec!["b".into()] }, 5_000);
    b.engine.local_delete(&id(3));
    b.sync(6_000).await;
    a.sync(7_000).await;
    b.sync(8_000).await;
    for d in [&a, &b] {
        let s = d.engine.state();
        assert_eq!(s.assets.len(), 2);
        assert_eq!(s.assets[&id(2)].meta.name, "from-b.txt");
        assert!(!s.assets.contains_key(&id(3)), "the delete reached both devices");
    }
    assert_eq!(a.engine.state().assets[&id(2)].remote_version, b.engine.state().assets[&id(2)].remote_version);
    let _ = std::fs::remove_dir_all(dir);
}
