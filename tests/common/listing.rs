//! `list()` returns records of the canonical shape as IndexedDB gave them and parses the rest:
//! both paths must give what parsing every record would (`get` parses), filters included.

use js_sys::{Array, Object};
use wasm_bindgen::JsValue;

use super::{asset_of, file, open};

fn keys(v: &JsValue) -> Vec<String> {
    let mut k: Vec<String> = Object::keys(&Object::from(v.clone())).iter().map(|k| k.as_string().unwrap()).collect();
    k.sort();
    k
}

pub async fn list_matches_parsed_records(storage: &str) {
    let Some(lib) = open(storage).await else { return };
    let img = asset_of(&lib.import_file(file(b"png", "a.png", "image/png").into(), None).await.unwrap());
    let id = |n: u8| format!("0190f0c2-7a0e-7cc0-8000-0000000000{n:02x}");
    let planted = [
        // An older version's record: ISO timestamps, no tags/storage/syncStatus.
        format!(
            r#"{{"id":"{}","handleName":"h1","name":"old.jpg","type":"image/jpeg","size":4,"createdAt":"2023-11-14T22:13:20.000Z","updatedAt":1700000000000}}"#,
            id(1)
        ),
        // A stray field: parsed, and returned without it.
        format!(
            r#"{{"id":"{}","handleName":"h2","name":"x.txt","type":"text/plain","size":1,"createdAt":1700000000001,"updatedAt":1700000000001,"tags":["holiday"],"storage":"opfs","syncStatus":"pending","colour":"red"}}"#,
            id(2)
        ),
        // A null optional field: parsed, and returned without it.
        format!(
            r#"{{"id":"{}","handleName":"h5","name":"n.txt","type":"text/plain","size":1,"createdAt":1700000000004,"updatedAt":1700000000004,"tags":["holiday"],"storage":"opfs","syncStatus":"pending","cloudId":null}}"#,
            id(5)
        ),
        // Canonical, synced, with every optional field.
        format!(
            r#"{{"syncStatus":"synced","storage":"remote","tags":["holiday","x"],"id":"{}","handleName":"h3","name":"s.png","type":"image/png","size":9,"createdAt":1700000000002,"updatedAt":1700000000003,"sha256":"ab","cloudId":"c","cloudUrl":"/u","userId":"u","cloudVersion":3,"syncError":{{"status":409,"code":"CONFLICT"}}}}"#,
            id(3)
        ),
    ];
    for json in &planted {
        lib.library().catalog().put_raw(&js_sys::JSON::parse(json).unwrap()).await.unwrap();
    }
    let ids = [id(1), id(2), id(3), id(5), img.id.clone()];
    let mut parsed = Vec::new();
    for i in &ids {
        parsed.push(lib.get(i.clone().into()).await.unwrap());
    }
    for filter in
        ["{}", r#"{"tag":"holiday"}"#, r#"{"syncStatus":"synced"}"#, r#"{"typePrefix":"image/"}"#, r#"{"tag":"none"}"#]
    {
        let f: opfs_media::asset::ListFilter = serde_json::from_str(filter).unwrap();
        let listed = Array::from(&lib.list(Some(js_sys::JSON::parse(filter).unwrap())).await.unwrap());
        let mut want: Vec<&JsValue> = parsed.iter().filter(|p| f.matches(&asset_of(p))).collect();
        want.sort_by(|a, b| {
            let (a, b) = (asset_of(a), asset_of(b));
            a.created_at.total_cmp(&b.created_at).then_with(|| a.id.cmp(&b.id))
        });
        let got: Vec<JsValue> = listed.iter().collect();
        assert_eq!(got.len(), want.len(), "filter {filter}");
        for (g, w) in got.iter().zip(want) {
            assert_eq!(asset_of(g), asset_of(w), "filter {filter}");
            assert_eq!(keys(g), keys(w), "filter {filter}: same fields as the parsed record");
        }
    }
    // Canonical records come back as IndexedDB returned them (the planted key order, with
    // `syncStatus` first), not parsed and re-encoded (which writes `id` first).
    let all = Array::from(&lib.list(None).await.unwrap());
    let synced = all.iter().find(|a| asset_of(a).id == id(3)).unwrap();
    assert_eq!(Object::keys(&Object::from(synced)).get(0).as_string().unwrap(), "syncStatus");
    let legacy = all.iter().find(|a| asset_of(a).id == id(1)).unwrap();
    assert_eq!(Object::keys(&Object::from(legacy)).get(0).as_string().unwrap(), "id", "others are re-encoded");
    // A corrupt record still fails the list, named.
    let bad = format!(r#"{{"id":"{}","size":"huge"}}"#, id(4));
    lib.library().catalog().put_raw(&js_sys::JSON::parse(&bad).unwrap()).await.unwrap();
    let err = lib.list(None).await.unwrap_err();
    assert_eq!(super::field(&err, "code").as_string().unwrap(), "CORRUPT_RECORD");
    assert!(super::field(&err, "message").as_string().unwrap().contains(&id(4)));
}
