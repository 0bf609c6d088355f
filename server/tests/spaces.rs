//! Spaces through the real router, for what the conformance suite does not reach: a CORS
//! preflight to a malformed space id, the extension off without an admin secret, and the
//! admin API's answers. (The protocol's rules are in tests/conformance/spaces.mjs.)

use opfs_media_server::{auth::AuthMode, db::Db, router, storage, AppState};

const ADMIN: &str = "admin-secret-0123456789";

async fn start(admin: bool) -> String {
    let dir = std::env::temp_dir().join(format!("opfs-spaces-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::connect(&format!("sqlite://{}/m.db?mode=rwc", dir.display())).await.unwrap();
    let store = storage::open(&format!("file://{}/objects", dir.display())).unwrap();
    let mut state = AppState::new(db, store, AuthMode::DevInsecure, 1 << 20).await.unwrap();
    state.admin_secret = admin.then(|| std::sync::Arc::from(ADMIN.as_bytes()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let origins = vec!["http://app.test".to_owned()];
    tokio::spawn(async move { axum::serve(listener, router(state, &origins)).await.unwrap() });
    base
}

async fn code(r: reqwest::Response) -> (u16, String) {
    let status = r.status().as_u16();
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    (status, v["error"]["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_preflight_is_answered_whatever_the_space_id() {
    let base = start(true).await;
    let c = reqwest::Client::new();
    let pre = c
        .request(reqwest::Method::OPTIONS, format!("{base}/api/spaces/a.b/media/assets"))
        .header("origin", "http://app.test")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(matches!(pre.status().as_u16(), 200 | 204), "preflight: {}", pre.status());
    let got = c.get(format!("{base}/api/spaces/a.b/media/assets")).bearer_auth("dev:alice").send().await.unwrap();
    assert_eq!(code(got).await, (400, "INVALID_SPACE_ID".into()));
}

#[tokio::test]
async fn without_an_admin_secret_spaces_and_the_admin_api_do_not_exist() {
    let base = start(false).await;
    let c = reqwest::Client::new();
    for url in [format!("{base}/api/spaces/b1/media/assets"), format!("{base}/api/admin/spaces/b1/members")] {
        let r = c.get(url).bearer_auth(ADMIN).send().await.unwrap();
        assert_eq!(code(r).await, (404, "UNKNOWN_ENDPOINT".into()));
    }
    let caps: serde_json::Value =
        c.get(format!("{base}/api/media/capabilities")).send().await.unwrap().json().await.unwrap();
    assert!(caps.get("spaces").is_none());
    assert!(!caps["features"].as_array().unwrap().iter().any(|f| f == "spaces"));
}

#[tokio::test]
async fn membership_through_the_admin_api_decides_access_at_once() {
    let base = start(true).await;
    let c = reqwest::Client::new();
    let assets = format!("{base}/api/spaces/b1/media/assets");
    let member = format!("{base}/api/admin/spaces/b1/members/alice");
    assert_eq!(code(c.get(&assets).bearer_auth("dev:alice").send().await.unwrap()).await, (403, "NOT_A_MEMBER".into()));
    assert_eq!(
        c.put(&member).bearer_auth("dev:alice").send().await.unwrap().status(),
        401,
        "a user token is not the admin secret"
    );
    assert_eq!(c.put(&member).bearer_auth(ADMIN).send().await.unwrap().status(), 201);
    assert_eq!(c.get(&assets).bearer_auth("dev:alice").send().await.unwrap().status(), 200);
    assert_eq!(c.delete(&member).bearer_auth(ADMIN).send().await.unwrap().status(), 204);
    assert_eq!(code(c.get(&assets).bearer_auth("dev:alice").send().await.unwrap()).await, (403, "NOT_A_MEMBER".into()));
}
