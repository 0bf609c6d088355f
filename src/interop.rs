//! The JS-facing surface (`#[wasm_bindgen]`): argument checks, error conversion, nothing else.
//! Every function works the same in a page and in a dedicated worker.

use std::cell::RefCell;
use std::rc::Rc;

use futures_util::future::{FutureExt, LocalBoxFuture, Shared};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::asset::{AssetPatch, ImportOptions, ListFilter};
use crate::budget::BudgetSpec;
use crate::error::LibraryError;
use crate::store::{Library, StoragePreference};
use crate::validate::ValidationError;

/// Options for `MediaLibrary.open`.
#[derive(Tsify, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LibraryOptions {
    /// Library name (1-64 of `a-zA-Z0-9-_`); `default` if absent. Names the IndexedDB
    /// database `opfs-media:<name>` and the OPFS directory `opfs-media/<name>/`.
    #[serde(default)]
    #[tsify(optional)]
    pub name: Option<String>,
    /// Where to keep bytes: `auto` (OPFS, else IndexedDB), `opfs` (or fail) or `indexeddb`.
    #[serde(default)]
    #[tsify(optional, type = "\"auto\" | \"opfs\" | \"indexeddb\"")]
    pub storage: Option<String>,
    /// Sweep orphans when opening (default `true`).
    #[serde(default)]
    #[tsify(optional)]
    pub sweep_on_open: Option<bool>,
    /// Only sweep leftovers older than this many ms (default one hour), so an import that
    /// another tab is running right now is never touched.
    #[serde(default)]
    #[tsify(optional)]
    pub sweep_grace_ms: Option<f64>,
    /// A local budget: `{ maxBytes }` or `{ quotaFraction }`. Without it nothing is ever
    /// evicted. Opening a library already open in this realm with a budget sets it there.
    #[serde(default)]
    #[tsify(optional)]
    pub budget: Option<crate::budget::BudgetSpec>,
    /// Bytes below this size are stored in IndexedDB, in the same transaction as their record;
    /// larger ones in OPFS (default 1 MiB; `0`: always OPFS; at most 64 MiB). Assets already
    /// stored stay where they are. Opening a library already open in this realm with it sets it there.
    #[serde(default, deserialize_with = "present")]
    #[tsify(optional, type = "number")]
    pub small_file_bytes: Option<Option<f64>>,
}

/// A field given as `null` (or as NaN or Infinity, which JSON makes `null`) is `Some(None)`,
/// told apart from a missing one (`None`), so a bad number is refused rather than ignored.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<f64>>, D::Error> {
    Option::<f64>::deserialize(d).map(Some)
}

/// Options for `MediaLibrary.sweep`.
#[derive(Tsify, Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SweepOptions {
    /// Only remove leftovers older than this many ms (default one hour).
    #[serde(default)]
    #[tsify(optional)]
    pub grace_ms: Option<f64>,
}

const DEFAULT_GRACE_MS: f64 = 3_600_000.0;

#[wasm_bindgen(typescript_custom_section)]
const IMPORT_SOURCE_TS: &str = r#"
/**
 * What an import reads: a `File`/`Blob`, or a stream of bytes (a `fetch` body, a
 * `MediaRecorder`'s chunks piped through a stream), written to storage as it arrives.
 * Chunks may be `Uint8Array`s, other typed arrays, `ArrayBuffer`s or `Blob`s.
 */
export type ImportSource = Blob | ReadableStream<ArrayBufferView | ArrayBuffer | Blob>;

/**
 * One file's outcome in `importFiles` / `importFilesToLibrary`, in input order: the stored
 * asset, or the typed error that refused it (nothing of that file was stored).
 */
export type ImportResult =
    | { id: string; asset: MediaAsset; error?: undefined }
    | { id?: undefined; asset?: undefined; error: ImportError };

/** The `Error` of a failed file in a batch: `name` and `code` as `importFile` would reject with. */
export interface ImportError extends Error {
    /** A stable code, e.g. `NOT_A_BLOB`, `NAME_IS_PATH`, `SOURCE_UNREADABLE`, `QUOTA_EXCEEDED`. */
    code: string;
}
"#;

/// Turns a library error into a JS `Error` with a stable `name` and `code`.
pub fn to_js_error(e: LibraryError) -> JsValue {
    let err = js_sys::Error::new(&e.to_string());
    err.set_name(e.name());
    let _ = js_sys::Reflect::set(&err, &"code".into(), &e.code().into());
    err.into()
}

pub(crate) fn options<T: DeserializeOwned + Default>(what: &'static str, v: Option<JsValue>) -> Result<T, JsValue> {
    options_nested(what, v, &[])
}

/// `options`, also checking the keys of the nested option objects that `nested` names (field,
/// its struct's `strict::fields`).
fn options_nested<T: DeserializeOwned + Default>(
    what: &'static str,
    v: Option<JsValue>,
    nested: &[(&str, &'static [&'static str])],
) -> Result<T, JsValue> {
    parse_options(what, v, nested).map_err(|e| to_js_error(e.into()))
}

/// `options_nested`, refusing with the `ValidationError` (a batch keeps it for one file).
fn parse_options<T: DeserializeOwned + Default>(
    what: &'static str,
    v: Option<JsValue>,
    nested: &[(&str, &'static [&'static str])],
) -> Result<T, ValidationError> {
    let Some(v) = v.filter(|v| !v.is_undefined() && !v.is_null()) else {
        return Ok(T::default());
    };
    if !v.is_object() {
        return Err(ValidationError::BadOptions { what, detail: "expected an object".into() });
    }
    let bad = |detail: String| ValidationError::BadOptions { what, detail };
    // JSON semantics (NaN -> null, toJSON, undefined dropped), then serde-wasm-bindgen, which
    // ignores `deny_unknown_fields`: a misspelt option must be an error, so check the keys here.
    let text = js_sys::JSON::stringify(&v).map_err(|e| bad(crate::platform::error_parts(&e).1))?;
    let v = js_sys::JSON::parse(&String::from(text)).map_err(|e| bad(crate::platform::error_parts(&e).1))?;
    // (An array's keys are its indices: `["x"]` is refused, `[]` is no options.)
    let keys = |v: &JsValue| -> Vec<String> {
        let obj = v.dyn_ref::<js_sys::Object>();
        obj.map(|o| js_sys::Object::keys(o).iter().filter_map(|k| k.as_string()).collect()).unwrap_or_default()
    };
    let unknown = |v: &JsValue, fields| crate::strict::unknown_key(keys(v).iter().map(String::as_str), fields);
    if let Some(detail) = unknown(&v, crate::strict::fields::<T>()) {
        return Err(bad(detail));
    }
    for (field, fields) in nested {
        let inner = js_sys::Reflect::get(&v, &JsValue::from_str(field)).unwrap_or(JsValue::UNDEFINED);
        if let Some(detail) = unknown(&inner, fields) {
            return Err(bad(detail));
        }
    }
    serde_wasm_bindgen::from_value(v).map_err(|e| bad(e.to_string()))
}

pub(crate) fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsValue> {
    crate::platform::to_value(v)
        .map_err(|e| to_js_error(LibraryError::Storage { op: "encoding a result", detail: e.to_string() }))
}

fn budget_arg(v: Option<JsValue>) -> Result<BudgetSpec, JsValue> {
    let spec: BudgetSpec = options("budget", v)?;
    spec.validate().map_err(|e| to_js_error(e.into()))
}

pub(crate) fn id_arg(v: &JsValue) -> Result<String, JsValue> {
    v.as_string().ok_or_else(|| to_js_error(ValidationError::MalformedId(format!("{v:?}")).into()))
}

/// A local media library. Most apps use the module functions (`importFileToLibrary`, ...),
/// which work on the library named `default`; open others for isolation (tests, accounts).
#[wasm_bindgen]
pub struct MediaLibrary {
    inner: Rc<Library>,
}

#[wasm_bindgen]
impl MediaLibrary {
    /// Opens (creating) a library and sweeps leftovers of interrupted imports.
    pub async fn open(
        #[wasm_bindgen(unchecked_optional_param_type = "LibraryOptions")] options: Option<JsValue>,
    ) -> Result<MediaLibrary, JsValue> {
        let budget = ("budget", crate::strict::fields::<BudgetSpec>());
        let opts: LibraryOptions = options_nested("library options", options, &[budget])?;
        open_library(opts).await.map(|inner| MediaLibrary { inner })
    }

    /// The library's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.inner.name().to_owned()
    }

    /// Where new bytes go: `"opfs"` or `"indexeddb"`.
    #[wasm_bindgen(getter, unchecked_return_type = "StorageKind")]
    pub fn storage(&self) -> String {
        self.inner.storage_kind().as_str().to_owned()
    }

    /// Whether this context writes OPFS through sync access handles (dedicated workers): streams
    /// always, whole files where the worker lacks `createWritable`.
    #[wasm_bindgen(getter, js_name = usesSyncAccessHandle)]
    pub fn uses_sync_access_handle(&self) -> bool {
        self.inner.uses_sync_access_handle()
    }

    /// Imports a `File`/`Blob`, or a `ReadableStream` of bytes (pass `name` and `type` in the
    /// options); resolves with the full record once bytes and record are durable.
    #[wasm_bindgen(js_name = importFile, unchecked_return_type = "MediaAsset")]
    pub async fn import_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ImportSource")] file: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ImportOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let opts: ImportOptions = self::options("import options", options)?;
        let asset = self.inner.import(&file, opts).await.map_err(to_js_error)?;
        to_js(&asset)
    }

    /// Imports many files at once: every file's bytes, then all their records in one strict
    /// IndexedDB transaction. Resolves, once everything stored is durable, with one outcome per
    /// file in input order: `{ id, asset }` or `{ error }` (a typed `Error`); a failed file
    /// leaves nothing behind and does not fail the others. `options`: one object for every
    /// file, or an array with one entry per file.
    #[wasm_bindgen(js_name = importFiles, unchecked_return_type = "ImportResult[]")]
    pub async fn import_files(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Iterable<ImportSource> | ArrayLike<ImportSource>")] files: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ImportOptions | (ImportOptions | null | undefined)[]")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        import_files_into(&self.inner, files, options).await
    }

    /// Lists assets (oldest first), optionally filtered.
    #[wasm_bindgen(unchecked_return_type = "MediaAsset[]")]
    pub async fn list(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "ListFilter")] filter: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let filter: ListFilter = options("list filter", filter)?;
        self.inner.list_js(&filter).await.map_err(to_js_error)
    }

    /// One asset's record; rejects with `NotFoundError` for an unknown id.
    #[wasm_bindgen(unchecked_return_type = "MediaAsset")]
    pub async fn get(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<JsValue, JsValue> {
        to_js(&self.inner.get(&id_arg(&id)?).await.map_err(to_js_error)?)
    }

    /// The asset's SHA-256 (64 lowercase hex digits). Imports do not compute it (it would slow
    /// them); the sync service does before the first upload, and this call does on demand
    /// (from the local bytes) and stores it on the record.
    #[wasm_bindgen(unchecked_return_type = "string")]
    pub async fn checksum(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<JsValue, JsValue> {
        Ok(self.inner.checksum(&id_arg(&id)?).await.map_err(to_js_error)?.into())
    }

    /// The asset's bytes as a `File` (name and type set), for `createImageBitmap` or an object URL.
    #[wasm_bindgen(js_name = getFile)]
    pub async fn get_file(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    ) -> Result<web_sys::File, JsValue> {
        self.inner.file(&id_arg(&id)?).await.map_err(to_js_error)
    }

    /// Edits user metadata (name, tags).
    #[wasm_bindgen(unchecked_return_type = "MediaAsset")]
    pub async fn update(
        &self,
        #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
        #[wasm_bindgen(unchecked_param_type = "AssetPatch")] patch: JsValue,
    ) -> Result<JsValue, JsValue> {
        let patch: AssetPatch = options("asset patch", Some(patch))?;
        to_js(&self.inner.update(&id_arg(&id)?, patch).await.map_err(to_js_error)?)
    }

    /// Deletes an asset and its bytes; rejects with `NotFoundError` if it is not there.
    pub async fn delete(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<(), JsValue> {
        self.inner.delete(&id_arg(&id)?).await.map_err(to_js_error)
    }

    /// Removes leftovers of interrupted imports and reports records whose bytes are missing.
    #[wasm_bindgen(unchecked_return_type = "SweepReport")]
    pub async fn sweep(
        &self,
        #[wasm_bindgen(unchecked_optional_param_type = "SweepOptions")] options: Option<JsValue>,
    ) -> Result<JsValue, JsValue> {
        let opts: SweepOptions = self::options("sweep options", options)?;
        to_js(&self.inner.sweep(opts.grace_ms.unwrap_or(DEFAULT_GRACE_MS)).await.map_err(to_js_error)?)
    }

    /// Storage usage/quota for the origin.
    #[wasm_bindgen(unchecked_return_type = "StorageInfo")]
    pub async fn estimate(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.estimate().await.map_err(to_js_error)?)
    }

    /// Asks for persistent storage; `false` if refused or unsupported.
    #[wasm_bindgen(js_name = requestPersistence)]
    pub async fn request_persistence(&self) -> bool {
        self.inner.request_persistence().await
    }

    /// Sets this context's local budget (`{ maxBytes }` or `{ quotaFraction }`), or removes it
    /// with `null`; evicts down to it at once. Resolves with what was evicted.
    #[wasm_bindgen(js_name = setBudget, unchecked_return_type = "EvictReport")]
    pub async fn set_budget(
        &self,
        #[wasm_bindgen(unchecked_param_type = "BudgetSpec | null")] budget: JsValue,
    ) -> Result<JsValue, JsValue> {
        let spec: Option<BudgetSpec> = match budget.is_null() || budget.is_undefined() {
            true => None,
            false => Some(budget_arg(Some(budget))?),
        };
        self.inner.set_budget(spec);
        to_js(&self.inner.evict_to_budget().await.map_err(to_js_error)?)
    }

    /// Evicts synced, unpinned local copies (least recently used first) until the budget
    /// fits; nothing without a budget. Resolves with what was evicted.
    #[wasm_bindgen(unchecked_return_type = "EvictReport")]
    pub async fn evict(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.evict_to_budget().await.map_err(to_js_error)?)
    }

    /// Pins an asset: its local copy is never evicted (persisted, for every context).
    pub async fn pin(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<(), JsValue> {
        self.inner.set_pinned(&id_arg(&id)?, true).await.map_err(to_js_error)
    }

    /// Unpins an asset: it may be evicted again once synced.
    pub async fn unpin(&self, #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<(), JsValue> {
        self.inner.set_pinned(&id_arg(&id)?, false).await.map_err(to_js_error)
    }

    /// Ids of the pinned assets.
    #[wasm_bindgen(js_name = pinnedIds, unchecked_return_type = "string[]")]
    pub async fn pinned_ids(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.pinned_ids().await.map_err(to_js_error)?)
    }

    /// Listens for `change` events (`event.detail = { kind: 'import'|'update'|'delete', id }`)
    /// and `evict` events (`event.detail = { evicted: string[], bytes, reason }`).
    #[wasm_bindgen(js_name = addEventListener)]
    pub fn add_event_listener(&self, kind: &str, listener: &js_sys::Function) -> Result<(), JsValue> {
        self.inner.events().add_event_listener_with_callback(kind, listener)
    }

    /// Stops listening.
    #[wasm_bindgen(js_name = removeEventListener)]
    pub fn remove_event_listener(&self, kind: &str, listener: &js_sys::Function) -> Result<(), JsValue> {
        self.inner.events().remove_event_listener_with_callback(kind, listener)
    }

    /// Closes the database connection; the object (and every handle to the same library in
    /// this realm) is unusable afterwards.
    pub fn close(&self) {
        OPEN.with(|o| o.borrow_mut().retain(|(_, l)| !std::ptr::eq(l.as_ptr(), Rc::as_ptr(&self.inner))));
        DEFAULT.with(|d| {
            let is_default = d
                .borrow()
                .as_ref()
                .and_then(|f| f.peek().cloned())
                .and_then(Result::ok)
                .is_some_and(|l| Rc::ptr_eq(&l, &self.inner));
            if is_default {
                d.borrow_mut().take();
            }
        });
        self.inner.close();
    }
}

impl MediaLibrary {
    /// The Rust library behind this handle (for Rust callers and tests).
    pub fn library(&self) -> &Library {
        &self.inner
    }
}

pub(crate) async fn open_library(opts: LibraryOptions) -> Result<Rc<Library>, JsValue> {
    let pref = match opts.storage.as_deref() {
        None | Some("auto") => StoragePreference::Auto,
        Some("opfs") => StoragePreference::Opfs,
        Some("indexeddb") => StoragePreference::IndexedDb,
        Some(other) => {
            let detail = format!("storage must be \"auto\", \"opfs\" or \"indexeddb\", not {other:?}");
            return Err(to_js_error(ValidationError::BadOptions { what: "library options", detail }.into()));
        }
    };
    let budget = match opts.budget {
        Some(spec) => Some(spec.validate().map_err(|e| to_js_error(e.into()))?),
        None => None,
    };
    let small = match opts.small_file_bytes {
        None => None,
        Some(v) => Some(crate::home::small_file_bytes(v.unwrap_or(f64::NAN)).map_err(|e| to_js_error(e.into()))?),
    };
    let name = opts.name.as_deref().unwrap_or("default");
    let key = (name.to_owned(), pref);
    // One instance per name and preference in a realm, so a sync service and the app share
    // it: the service can then answer `getFile` of a remote-only asset with a download.
    let found = OPEN.with(|o| o.borrow().iter().find(|(k, _)| *k == key).and_then(|(_, l)| l.upgrade()));
    if let Some(open) = found {
        if budget.is_some() {
            open.set_budget(budget);
        }
        if let Some(small) = small {
            open.set_small_file_bytes(small);
        }
        return Ok(open);
    }
    let lib = Library::open(name, pref).await.map_err(to_js_error)?;
    lib.set_budget(budget);
    if let Some(small) = small {
        lib.set_small_file_bytes(small);
    }
    if opts.sweep_on_open.unwrap_or(true) {
        lib.sweep(opts.sweep_grace_ms.unwrap_or(DEFAULT_GRACE_MS)).await.map_err(to_js_error)?;
    }
    let lib = Rc::new(lib);
    OPEN.with(|o| {
        let mut o = o.borrow_mut();
        o.retain(|(k, l)| *k != key && l.strong_count() > 0);
        o.push((key, Rc::downgrade(&lib)));
    });
    Ok(lib)
}

/// A library open in this realm, by (name, storage preference).
type OpenLibrary = ((String, StoragePreference), std::rc::Weak<Library>);

thread_local! {
    /// Libraries open in this realm (weakly held; `close()` removes them). A handful at most.
    static OPEN: RefCell<Vec<OpenLibrary>> = const { RefCell::new(Vec::new()) };
}

type SharedOpen = Shared<LocalBoxFuture<'static, Result<Rc<Library>, JsValue>>>;

thread_local! {
    /// The `default` library, opened once per JS realm on first use (concurrent first
    /// calls share one open).
    static DEFAULT: RefCell<Option<SharedOpen>> = const { RefCell::new(None) };
}

pub(crate) async fn default_library() -> Result<Rc<Library>, JsValue> {
    let fut = DEFAULT.with(|d| {
        d.borrow_mut().get_or_insert_with(|| open_library(LibraryOptions::default()).boxed_local().shared()).clone()
    });
    let result = fut.await;
    if result.is_err() {
        // Let a later call retry (e.g. after the user left private mode).
        DEFAULT.with(|d| d.borrow_mut().take());
    }
    result
}

/// The `default` library used by the module functions (for its events and `sweep`).
#[wasm_bindgen(js_name = defaultLibrary)]
pub async fn default_library_handle() -> Result<MediaLibrary, JsValue> {
    default_library().await.map(|inner| MediaLibrary { inner })
}

/// Imports a `File`/`Blob`, or a `ReadableStream` of bytes, into the default library; resolves
/// with the new asset id once the bytes (OPFS, or IndexedDB where OPFS is missing) and the
/// record are durable.
#[wasm_bindgen(js_name = importFileToLibrary)]
pub async fn import_file_to_library(
    #[wasm_bindgen(unchecked_param_type = "ImportSource")] file: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ImportOptions")] options: Option<JsValue>,
) -> Result<String, JsValue> {
    let opts: ImportOptions = self::options("import options", options)?;
    let lib = default_library().await?;
    lib.import(&file, opts).await.map(|a| a.id).map_err(to_js_error)
}

/// Imports many files into the default library at once (see `MediaLibrary.importFiles`):
/// resolves with `{ id, asset }` or `{ error }` per file, in input order.
#[wasm_bindgen(js_name = importFilesToLibrary, unchecked_return_type = "ImportResult[]")]
pub async fn import_files_to_library(
    #[wasm_bindgen(unchecked_param_type = "Iterable<ImportSource> | ArrayLike<ImportSource>")] files: JsValue,
    #[wasm_bindgen(unchecked_optional_param_type = "ImportOptions | (ImportOptions | null | undefined)[]")]
    options: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    let lib = default_library().await?;
    import_files_into(&lib, files, options).await
}

async fn import_files_into(lib: &Library, files: JsValue, options: Option<JsValue>) -> Result<JsValue, JsValue> {
    let bad = |detail: &str| to_js_error(ValidationError::BadOptions { what: "files", detail: detail.into() }.into());
    if !files.is_object() || files.is_instance_of::<web_sys::Blob>() || crate::platform::has_method(&files, "getReader")
    {
        return Err(bad("expected an array (or FileList, or other iterable) of Files, Blobs or ReadableStreams"));
    }
    // `Array.from` takes arrays, FileLists, array-likes and iterables alike.
    let sources: Vec<JsValue> = js_sys::Array::from(&files).iter().collect();
    let options = options.filter(|v| !v.is_undefined() && !v.is_null());
    let (shared, each) = match options {
        Some(v) if js_sys::Array::is_array(&v) => {
            let each = js_sys::Array::from(&v)
                .iter()
                .map(|o| parse_options::<ImportOptions>("import options", Some(o), &[]))
                .collect();
            (None, Some(each))
        }
        other => (Some(self::options::<ImportOptions>("import options", other)?), None),
    };
    let per_file = crate::batch::options_per_file(sources.len(), shared, each).map_err(|e| to_js_error(e.into()))?;
    let results = lib.import_many(&sources, per_file).await;
    let out = js_sys::Array::new_with_length(results.len() as u32);
    for (i, r) in results.into_iter().enumerate() {
        let item = js_sys::Object::new();
        match r {
            Ok(asset) => {
                let _ = js_sys::Reflect::set(&item, &"id".into(), &JsValue::from_str(&asset.id));
                let _ = js_sys::Reflect::set(&item, &"asset".into(), &to_js(&asset)?);
            }
            Err(e) => drop(js_sys::Reflect::set(&item, &"error".into(), &to_js_error(e))),
        }
        out.set(i as u32, item.into());
    }
    Ok(out.into())
}

/// Lists the default library's assets.
#[wasm_bindgen(js_name = listAssets, unchecked_return_type = "MediaAsset[]")]
pub async fn list_assets(
    #[wasm_bindgen(unchecked_optional_param_type = "ListFilter")] filter: Option<JsValue>,
) -> Result<JsValue, JsValue> {
    default_library_handle().await?.list(filter).await
}

/// One asset of the default library.
#[wasm_bindgen(js_name = getAsset, unchecked_return_type = "MediaAsset")]
pub async fn get_asset(#[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<JsValue, JsValue> {
    default_library_handle().await?.get(id).await
}

/// The bytes of an asset of the default library, as a `File`.
#[wasm_bindgen(js_name = getAssetFile)]
pub async fn get_asset_file(
    #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
) -> Result<web_sys::File, JsValue> {
    default_library_handle().await?.get_file(id).await
}

/// Deletes an asset of the default library.
#[wasm_bindgen(js_name = deleteAsset)]
pub async fn delete_asset(#[wasm_bindgen(unchecked_param_type = "string")] id: JsValue) -> Result<(), JsValue> {
    default_library_handle().await?.delete(id).await
}

/// Edits user metadata of an asset of the default library.
#[wasm_bindgen(js_name = updateAsset, unchecked_return_type = "MediaAsset")]
pub async fn update_asset(
    #[wasm_bindgen(unchecked_param_type = "string")] id: JsValue,
    #[wasm_bindgen(unchecked_param_type = "AssetPatch")] patch: JsValue,
) -> Result<JsValue, JsValue> {
    default_library_handle().await?.update(id, patch).await
}

/// Storage usage/quota for the origin.
#[wasm_bindgen(unchecked_return_type = "StorageInfo")]
pub async fn estimate() -> Result<JsValue, JsValue> {
    default_library_handle().await?.estimate().await
}

/// Asks the browser for persistent storage; `false` if refused or unsupported.
#[wasm_bindgen(js_name = requestPersistence)]
pub async fn request_persistence() -> bool {
    match crate::platform::storage_manager() {
        Some(_) => match default_library().await {
            Ok(lib) => lib.request_persistence().await,
            Err(_) => false,
        },
        None => false,
    }
}

#[wasm_bindgen(start)]
fn install_panic_hook() {
    console_error_panic_hook::set_once();
}
