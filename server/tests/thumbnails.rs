//! Thumbnail failures are remembered per asset: a file that could not be thumbnailed is never
//! decoded again, even if its stored bytes later decode (checked by swapping them in storage).

use object_store::{path::Path, PutPayload};
use opfs_media_server::{auth::AuthMode, db::Db, router, storage, AppState};
use sha2::{Digest, Sha256};

fn png(w: u32, h: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(image::RgbImage::new(w, h)).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn a_failed_thumbnail_is_not_retried() {
    let dir = std::env::temp_dir().join(format!("opfs-thumbs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Db::connect(&format!("sqlite://{}/m.db?mode=rwc", dir.display())).await.unwrap();
    let store = storage::open(&format!("file://{}/objects", dir.display())).unwrap();
    let state = AppState::new(db, store.clone(), AuthMode::DevInsecure, 1 << 20).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state, &[])).await.unwrap() });
    let http = reqwest::Client::new();

    let broken = b"not really a png".to_vec();
    let id = "0190f0c2-7a0e-7cc0-8000-0000000000aa";
    let up = http
        .post(format!("{base}/media/assets"))
        .bearer_auth("dev:alice")
        .header("content-type", "image/png")
        .header("x-asset-id", id)
        .header("x-asset-name", "broken.png")
        .header("x-content-sha256", hex::encode(Sha256::digest(&broken)))
        .body(broken)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    let path = up.json::<serde_json::Value>().await.unwrap()["path"].as_str().unwrap().to_owned();
    let thumb = || http.get(format!("{base}/media/assets/{id}/thumbnail")).bearer_auth("dev:alice").send();

    let first = thumb().await.unwrap();
    assert_eq!(first.status(), 422);
    let body: serde_json::Value = first.json().await.unwrap();
    assert_eq!(body["error"]["code"], "THUMBNAIL_UNAVAILABLE");
    assert_eq!(body["error"]["message"], "the image cannot be decoded", "no decoder internals");

    // Now the stored bytes decode: a server that retried would answer 200.
    store.put(&Path::from(path), PutPayload::from(png(20, 10))).await.unwrap();
    let second = thumb().await.unwrap();
    assert_eq!(second.status(), 422, "the failure is remembered, the file not decoded again");
    let _ = std::fs::remove_dir_all(dir);
}
