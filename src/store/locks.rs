//! A safe face over the Web Locks API (`navigator.locks.request`): a lock is held until its
//! `Held` is dropped. Feature-detected: where the API is missing, `acquire` answers `None`.

use js_sys::{Function, Promise};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::platform;

/// A held lock; dropping it releases the lock.
pub struct Held {
    release: Function,
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = self.release.call0(&JsValue::NULL);
    }
}

thread_local! {
    /// Resolves with a release function once the lock is held (or `null` when `ifAvailable`
    /// found it taken, or the API failed). Built once per realm: compiling it per call
    /// would cost every read.
    static REQUEST: Function = Function::new_with_args(
        "locks, name, mode, ifAvailable",
        "return new Promise((held) => {
            locks.request(name, { mode, ifAvailable }, (lock) => {
                if (!lock) { held(null); return; }
                return new Promise((release) => held(release));
            }).catch(() => held(null));
        })",
    );
}

/// `navigator.locks`, where this context has it.
fn locks() -> Option<JsValue> {
    let l = platform::get(&platform::get(&platform::global(), "navigator"), "locks");
    platform::has_method(&l, "request").then_some(l)
}

/// Whether Web Locks work here.
pub fn available() -> bool {
    locks().is_some()
}

/// Takes the lock `name`, shared or exclusive; waits for it unless `if_available`, which
/// answers `None` at once when it is taken. `None` too where Web Locks are missing.
pub async fn acquire(name: &str, exclusive: bool, if_available: bool) -> Option<Held> {
    let locks = locks()?;
    let mode = if exclusive { "exclusive" } else { "shared" };
    let p = REQUEST.with(|f| {
        f.apply(&JsValue::NULL, &js_sys::Array::of4(&locks, &name.into(), &mode.into(), &if_available.into()))
    });
    let release = JsFuture::from(p.ok()?.unchecked_into::<Promise>()).await.ok()?;
    release.dyn_into::<Function>().ok().map(|release| Held { release })
}
