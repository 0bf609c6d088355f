//! Feature detection and guarded calls into browser APIs that may be missing.
//! Nothing here assumes a `window`: the same code runs in a page and in a dedicated worker.

use js_sys::{Array, Function, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::StorageManager;

/// `v` as the library hands values to JS: JSON-compatible (maps as plain objects, 64-bit
/// integers as numbers). The facade (`interop::to_js`) and the store's events both use it.
pub fn to_value<T: serde::Serialize>(v: &T) -> Result<JsValue, serde_wasm_bindgen::Error> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible())
}

/// Dispatches a `CustomEvent` of `kind` with `detail` on `target`. Listener exceptions are
/// reported by the browser, not thrown into us.
pub fn dispatch(target: &web_sys::EventTarget, kind: &str, detail: &JsValue) {
    let init = web_sys::CustomEventInit::new();
    init.set_detail(detail);
    if let Ok(ev) = web_sys::CustomEvent::new_with_event_init_dict(kind, &init) {
        let _ = target.dispatch_event(&ev);
    }
}

/// The global object (`window` in a page, `self` in a worker).
pub fn global() -> Object {
    js_sys::global()
}

/// Reads `obj[key]`, treating a throwing getter like a missing property.
pub fn get(obj: &JsValue, key: &str) -> JsValue {
    if !obj.is_object() && !obj.is_function() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(obj, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

/// Whether `obj[name]` is a function (for methods, looks up the prototype chain too).
pub fn has_method(obj: &JsValue, name: &str) -> bool {
    get(obj, name).is_function()
}

/// Whether we run in a worker (no `document`, has `importScripts`).
pub fn is_worker() -> bool {
    let g = global();
    get(&g, "document").is_undefined() && has_method(&g, "importScripts")
}

/// Calls `obj[name](...args)`; a missing method is an `Err` naming it, never a `TypeError`
/// thrown through WASM.
pub fn call(obj: &JsValue, name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let f = get(obj, name);
    let Some(f) = f.dyn_ref::<Function>() else {
        return Err(js_sys::Error::new(&format!("{name}() is not available in this browser")).into());
    };
    let arr: Array = args.iter().copied().collect();
    Reflect::apply(f, obj, &arr)
}

/// Calls a method that returns a promise (or a value) and awaits it.
pub async fn call_async(obj: &JsValue, name: &str, args: &[&JsValue]) -> Result<JsValue, JsValue> {
    let v = call(obj, name, args)?;
    JsFuture::from(Promise::resolve(&v)).await
}

/// `navigator.storage`, if this context has it (WebKitGTK and insecure contexts do not).
pub fn storage_manager() -> Option<StorageManager> {
    let storage = get(&get(&global(), "navigator"), "storage");
    storage.is_object().then(|| storage.unchecked_into())
}

/// The DOMException-style `(name, message)` of a thrown value, for classification.
pub fn error_parts(err: &JsValue) -> (String, String) {
    let text = |k| get(err, k).as_string().unwrap_or_default();
    if err.is_object() {
        (text("name"), text("message"))
    } else {
        (String::new(), err.as_string().unwrap_or_else(|| format!("{err:?}")))
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Fills `buf` from `crypto.getRandomValues` (present in pages and workers, secure or not);
/// falls back to `Math.random` only if the API is missing, as ids need uniqueness, not secrecy.
pub fn fill_random(buf: &mut [u8]) {
    let crypto = get(&global(), "crypto");
    if has_method(&crypto, "getRandomValues") {
        let arr = js_sys::Uint8Array::new_with_length(buf.len() as u32);
        if call(&crypto, "getRandomValues", &[&arr]).is_ok() {
            arr.copy_to(buf);
            return;
        }
    }
    for b in buf.iter_mut() {
        *b = (js_sys::Math::random() * 256.0) as u8;
    }
}

/// A new asset id: UUID v7 (time-ordered, so ids sort by import time).
pub fn new_asset_id() -> String {
    let mut rand = [0u8; 10];
    fill_random(&mut rand);
    let ms = now_ms().max(0.0) as u64;
    uuid::Builder::from_unix_timestamp_millis(ms, &rand).into_uuid().hyphenated().to_string()
}

/// `setTimeout(f, ms)` on the global (page or worker); returns the handle (0 if missing).
pub fn set_timeout(ms: f64, f: impl FnOnce() + 'static) -> i32 {
    let cb = wasm_bindgen::closure::Closure::once_into_js(f);
    call(&global(), "setTimeout", &[&cb, &JsValue::from_f64(ms)]).ok().and_then(|v| v.as_f64()).unwrap_or(0.0) as i32
}

/// `clearTimeout(handle)`.
pub fn clear_timeout(handle: i32) {
    let _ = call(&global(), "clearTimeout", &[&JsValue::from(handle)]);
}

/// Resolves after `ms` milliseconds.
pub async fn sleep(ms: f64) {
    let p = Promise::new(&mut |resolve, _| {
        set_timeout(ms, move || drop(resolve.call0(&JsValue::UNDEFINED)));
    });
    let _ = JsFuture::from(p).await;
}

/// Lets the thread's other tasks run: `scheduler.yield()` where it exists (no timer clamp),
/// else a zero timeout (clamped to ~4 ms once nested).
pub async fn yield_now() {
    let scheduler = get(&global(), "scheduler");
    if has_method(&scheduler, "yield") && call_async(&scheduler, "yield", &[]).await.is_ok() {
        return;
    }
    sleep(0.0).await;
}
