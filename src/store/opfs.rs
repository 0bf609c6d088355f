//! The library's OPFS directory: create, stream-write with commit by rename, read, remove, list.
//! Each call is guarded: a missing or failing API becomes a `LibraryError`, never a throw.

use std::cell::{Cell, RefCell};

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, File, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemSyncAccessHandle, WritableStreamDefaultWriter,
};

use crate::error::LibraryError;
use crate::platform::{self, error_parts};
use crate::store::copy::{
    copy, copy_some, Budget, ChunkReader, ChunkSink, CopyFailure, Source, SyncHandleSink, WriterSink,
};
use crate::validate::ValidationError;

/// Suffix of files still being written; committed files are named by asset id alone.
pub const TEMP_SUFFIX: &str = ".tmp";

fn dom_err(op: &'static str) -> impl Fn(JsValue) -> LibraryError {
    move |e| {
        let (name, msg) = error_parts(&e);
        LibraryError::from_dom(op, &name, &msg)
    }
}

/// How bytes get into a file: decided once per library by feature detection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// `FileSystemFileHandle.createWritable()` (pages; workers in Chromium/Firefox).
    Writable,
    /// `createSyncAccessHandle()` (dedicated workers only; Safari's only write path).
    SyncHandle,
}

/// One library's directory: `<OPFS root>/opfs-media/<library>/`.
pub struct OpfsDir {
    /// Opened again if the browser removed it under the library (see `file_handle`).
    dir: RefCell<FileSystemDirectoryHandle>,
    library: String,
    /// Starts as detected; a worker whose engine refuses sync access handles at the first
    /// write (`NotSupportedError`, WebKitGTK's OPFS backend) moves to `Writable` for good.
    mode: Cell<WriteMode>,
}

impl OpfsDir {
    /// Opens (creating) the directory, or says why OPFS cannot be used here.
    pub async fn open(library: &str) -> Result<Self, LibraryError> {
        let dir = open_dir(library).await?;
        let proto = platform::get(&platform::get(&platform::global(), "FileSystemFileHandle"), "prototype");
        let mode = if platform::is_worker()
            && platform::has_method(&proto, "createSyncAccessHandle")
            && serves_sync_handles(&dir, &proto).await
        {
            WriteMode::SyncHandle
        } else if platform::has_method(&proto, "createWritable") {
            WriteMode::Writable
        } else {
            return Err(LibraryError::StorageUnavailable(
                "OPFS: no way to write files here (createWritable is missing and this is not a worker with sync access handles)".into(),
            ));
        };
        Ok(Self { dir: RefCell::new(dir), library: library.to_owned(), mode: Cell::new(mode) })
    }

    fn dir(&self) -> FileSystemDirectoryHandle {
        self.dir.borrow().clone()
    }

    /// The write path in use (it can move from `SyncHandle` to `Writable` at the first write,
    /// see `sync_handle`).
    pub fn mode(&self) -> WriteMode {
        self.mode.get()
    }

    /// Opens a sync access handle on `handle`, or `Ok(None)` where the engine refuses them
    /// (`NotSupportedError`: WebKitGTK's OPFS backend has `createSyncAccessHandle` but cannot
    /// serve it) and has `createWritable`: this library then writes through `createWritable`
    /// from here on (`serves_sync_handles` normally found that out at open).
    async fn sync_handle(
        &self,
        handle: &FileSystemFileHandle,
    ) -> Result<Option<FileSystemSyncAccessHandle>, LibraryError> {
        match create_sync_handle(handle).await {
            Ok(h) => Ok(Some(h)),
            Err(e) if error_parts(&e).0 == "NotSupportedError" && platform::has_method(handle, "createWritable") => {
                self.mode.set(WriteMode::Writable);
                Ok(None)
            }
            Err(e) => Err(dom_err("opening a file for writing")(e)),
        }
    }

    /// Streams `source` into `<name>.tmp`, commits it as `<name>`, returns the size. With
    /// `expect_sha256` the bytes are hashed while streaming and committed only if they match.
    /// On any failure the temporary file is removed and nothing is left under `name`.
    pub async fn write_new(
        &self,
        name: &str,
        source: Source<'_>,
        budget: Option<u64>,
        expect_sha256: Option<&str>,
    ) -> Result<f64, LibraryError> {
        let tmp = format!("{name}{TEMP_SUFFIX}");
        let handle = self.file_handle(&tmp, true).await?;
        let result = self.write_into(&handle, source, budget, expect_sha256.is_some()).await;
        let result = match (result, expect_sha256) {
            // A download that does not match its checksum never replaces anything.
            (Ok((_, Some(got))), Some(want)) if got != want => {
                Err(LibraryError::ChecksumMismatch { id: name.to_owned(), expected: want.to_owned(), got })
            }
            (result, _) => result.map(|(size, _)| size),
        };
        let result = match result {
            Ok(size) => self.commit(&handle, &tmp, name).await.map(|()| size),
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.remove_after_failure(&tmp).await;
        }
        result
    }

    async fn write_into(
        &self,
        handle: &FileSystemFileHandle,
        source: Source<'_>,
        budget: Option<u64>,
        hash: bool,
    ) -> Result<(f64, Option<String>), LibraryError> {
        let whole_blob = match source {
            Source::Blob(blob) if budget.is_none() && !hash && has_native_stream(blob) => Some(blob),
            _ => None,
        };
        if self.mode.get() == WriteMode::SyncHandle {
            // A whole Blob goes through `createWritable().write(blob)` where a worker has it
            // (Chromium, Firefox): the browser copies it, not this thread chunk by chunk.
            // Measured (bench/, Chromium 156, worker, median of 5): 100 MB 2.12x -> 0.95x the plain write.
            if whole_blob.is_none() || !platform::has_method(handle, "createWritable") {
                if let Some(h) = self.sync_handle(handle).await? {
                    return run_copy(source, SyncHandleSink::new(h), budget, hash).await;
                }
            }
        }
        let stream = JsFuture::from(handle.create_writable()).await.map_err(dom_err("opening a file for writing"))?;
        if let Some(blob) = whole_blob {
            return write_whole(handle, &stream, blob).await.map(|size| (size, None));
        }
        let writer: WritableStreamDefaultWriter = stream
            .unchecked_into::<web_sys::WritableStream>()
            .get_writer()
            .map_err(dom_err("opening a file for writing"))?;
        run_copy(source, WriterSink(writer), budget, hash).await
    }

    /// Renames the finished temp file into place. `move()` is feature-detected, and called as
    /// `move(directory, newName)`: WebKit (Safari 26) has only that overload and answers
    /// `move(newName)` with `TypeError: Not enough arguments`, while Chromium and Firefox take
    /// both. An engine that refuses the two-argument form with a `TypeError` gets the one-argument
    /// form. Without `move` the bytes are copied into the final name (by reference to the OPFS
    /// file, no WASM copy).
    async fn commit(&self, handle: &FileSystemFileHandle, tmp: &str, name: &str) -> Result<(), LibraryError> {
        if platform::has_method(handle, "move") {
            let name = JsValue::from_str(name);
            let moved = match platform::call_async(handle, "move", &[&self.dir(), &name]).await {
                Err(e) if error_parts(&e).0 == "TypeError" => platform::call_async(handle, "move", &[&name]).await,
                other => other,
            };
            moved.map_err(dom_err("committing a file"))?;
            return Ok(());
        }
        let written = self.file(tmp).await?.ok_or_else(|| LibraryError::Storage {
            op: "committing a file",
            detail: "temporary file vanished".into(),
        })?;
        let target = self.file_handle(name, true).await?;
        self.write_into(&target, Source::Blob(&written), None, false).await?;
        let _ = self.remove(tmp).await;
        Ok(())
    }

    /// Writes the next piece of `reader` into a new file `name`: up to the chunk that takes it
    /// past `stop_after` bytes, or to the stream's end. Feeds `hasher`, reports the piece's
    /// length to `progress`; returns `(bytes, whether the stream ended)`. The file is closed
    /// (committed) on success and also when the stream breaks, so what arrived stays.
    pub async fn write_piece(
        &self,
        name: &str,
        reader: &mut ChunkReader,
        hasher: &mut crate::digest::Sha256State,
        progress: &mut dyn FnMut(f64),
        stop_after: f64,
    ) -> Result<(f64, bool), LibraryError> {
        let handle = self.file_handle(name, true).await?;
        if self.mode.get() == WriteMode::SyncHandle {
            if let Some(h) = self.sync_handle(&handle).await? {
                let mut sink = KeepOnAbort(SyncHandleSink::new(h));
                return copy_some(reader, &mut sink, Some(hasher), progress, Some(stop_after)).await.map_err(copy_err);
            }
        }
        let stream = JsFuture::from(handle.create_writable()).await.map_err(dom_err("opening a file for writing"))?;
        let writer: WritableStreamDefaultWriter = stream
            .unchecked_into::<web_sys::WritableStream>()
            .get_writer()
            .map_err(dom_err("opening a file for writing"))?;
        let mut sink = KeepOnAbort(WriterSink(writer));
        let copied = copy_some(reader, &mut sink, Some(hasher), progress, Some(stop_after)).await;
        copied.map_err(copy_err)
    }

    /// Removes the temporary file of a failed write. The browser may still hold it for a
    /// moment after the writable was aborted (its removal then fails, e.g. with
    /// `NoModificationAllowedError`), so it is tried again a few times before giving up to the
    /// sweep, which removes stale temporary files. WebKit can hold an aborted writable's file
    /// for over half a second on a loaded machine (seen once in a worker on the webkit-opfs
    /// lane), so the last tries wait longer; this runs only when a write has failed.
    async fn remove_after_failure(&self, name: &str) {
        for wait_ms in [0.0, 20.0, 60.0, 150.0, 400.0, 1000.0, 2000.0] {
            platform::sleep(wait_ms).await;
            if self.remove(name).await.is_err() {
                continue;
            }
            // WebKit can write an aborted writable's file back a moment after its removal
            // succeeded (seen on the webkit-opfs lane): gone only when a later look says so.
            platform::sleep(25.0).await;
            if matches!(self.file(name).await, Ok(None)) {
                return;
            }
        }
    }

    /// Renames `from` to `to` (see `commit`).
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), LibraryError> {
        let handle = self.file_handle(from, false).await?;
        self.commit(&handle, from, to).await
    }

    async fn file_handle(&self, name: &str, create: bool) -> Result<FileSystemFileHandle, LibraryError> {
        let opts = FileSystemGetFileOptions::new();
        opts.set_create(create);
        let h = match JsFuture::from(self.dir().get_file_handle_with_options(name, &opts)).await {
            // Creating a file fails so only when the directory itself is gone (site data
            // cleared under the running app): it is made again, and the write goes there.
            Err(e) if create && is_not_found(&e) => {
                *self.dir.borrow_mut() = open_dir(&self.library).await?;
                JsFuture::from(self.dir().get_file_handle_with_options(name, &opts)).await
            }
            other => other,
        };
        Ok(h.map_err(dom_err("opening a file"))?.unchecked_into())
    }

    /// The stored file, or `None` if there is none under `name`.
    pub async fn file(&self, name: &str) -> Result<Option<File>, LibraryError> {
        let opts = FileSystemGetFileOptions::new();
        let h = match JsFuture::from(self.dir().get_file_handle_with_options(name, &opts)).await {
            Ok(h) => h.unchecked_into::<FileSystemFileHandle>(),
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(dom_err("opening a file")(e)),
        };
        let f = JsFuture::from(h.get_file()).await.map_err(dom_err("reading a file"))?;
        Ok(Some(f.unchecked_into()))
    }

    /// Removes `name`; `Ok(false)` if it was not there.
    pub async fn remove(&self, name: &str) -> Result<bool, LibraryError> {
        match JsFuture::from(self.dir().remove_entry(name)).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(dom_err("removing a file")(e)),
        }
    }

    /// The names of every file in the directory.
    pub async fn names(&self) -> Result<Vec<String>, LibraryError> {
        let iter = platform::call(&self.dir(), "values", &[]).map_err(dom_err("listing files"))?;
        let mut out = Vec::new();
        loop {
            let step = match platform::call_async(&iter, "next", &[]).await {
                Ok(step) => step,
                // The directory itself is gone (site data cleared under the running app): it
                // holds nothing, and is made again for the writes to come.
                Err(e) if is_not_found(&e) && out.is_empty() && !self.dir_exists().await => {
                    *self.dir.borrow_mut() = open_dir(&self.library).await?;
                    return Ok(out);
                }
                Err(e) => return Err(dom_err("listing files")(e)),
            };
            if platform::get(&step, "done").as_bool().unwrap_or(true) {
                break;
            }
            let entry = platform::get(&step, "value");
            if platform::get(&entry, "kind").as_string().as_deref() == Some("file") {
                out.push(platform::get(&entry, "name").as_string().unwrap_or_default());
            }
        }
        Ok(out)
    }

    /// Whether the library's folder is still there (looked up from the OPFS root, not created).
    async fn dir_exists(&self) -> bool {
        let Some(storage) = platform::storage_manager() else { return false };
        let Ok(root) = platform::call_async(&storage, "getDirectory", &[]).await else { return false };
        let root: FileSystemDirectoryHandle = root.unchecked_into();
        let Ok(top) = JsFuture::from(root.get_directory_handle("opfs-media")).await else { return false };
        let top: FileSystemDirectoryHandle = top.unchecked_into();
        JsFuture::from(top.get_directory_handle(&self.library)).await.is_ok()
    }

    /// The size of `name` once it holds at least `expected` bytes, waiting up to about a
    /// second for it: WebKit can resolve a writable's `close()` before `getFile()` shows all
    /// of it. What is there after that is the answer (`0` if the file is gone).
    pub async fn settled_size(&self, name: &str, expected: f64) -> Result<f64, LibraryError> {
        let mut size = 0.0;
        for wait_ms in [0.0, 20.0, 50.0, 100.0, 200.0, 300.0, 400.0] {
            platform::sleep(wait_ms).await;
            size = self.file(name).await?.map_or(0.0, |f| f.size());
            if size >= expected {
                break;
            }
        }
        Ok(size)
    }

    /// The file's `lastModified` (ms), or `None` if it is gone.
    pub async fn modified(&self, name: &str) -> Result<Option<f64>, LibraryError> {
        Ok(self.file(name).await?.map(|f| f.last_modified()))
    }
}

/// `createSyncAccessHandle()`, tried again a few times while WebKit answers a transient
/// `InvalidStateError` (a handle of the same file still closing).
async fn create_sync_handle(handle: &FileSystemFileHandle) -> Result<FileSystemSyncAccessHandle, JsValue> {
    let mut waits = [10.0, 40.0, 100.0, 250.0, 500.0].into_iter();
    loop {
        match JsFuture::from(handle.create_sync_access_handle()).await {
            Ok(h) => return Ok(h.unchecked_into()),
            Err(e) => match (error_parts(&e).0.as_str(), waits.next()) {
                ("InvalidStateError", Some(ms)) => platform::sleep(ms).await,
                _ => return Err(e),
            },
        }
    }
}

/// Whether this engine's OPFS can open a sync access handle, tried once on a throwaway file
/// (`.sah-probe-<random>.tmp`, removed again; the sweep takes it if that fails). WebKitGTK has
/// `createSyncAccessHandle` but its backend answers `NotSupportedError`, and the file it was
/// asked for then refuses `createWritable` too (`InvalidStateError`), even after it is removed
/// and created again under its name: so never on a real file. Without `createWritable` to fall
/// back on, the answer is yes (the writes then report the engine's own error).
async fn serves_sync_handles(dir: &FileSystemDirectoryHandle, proto: &JsValue) -> bool {
    if !platform::has_method(proto, "createWritable") {
        return true;
    }
    let mut rand = [0u8; 6];
    platform::fill_random(&mut rand);
    let name = format!(".sah-probe-{}{TEMP_SUFFIX}", crate::store::copy::hex(&rand));
    let opts = FileSystemGetFileOptions::new();
    opts.set_create(true);
    let Ok(handle) = JsFuture::from(dir.get_file_handle_with_options(&name, &opts)).await else { return true };
    let handle: FileSystemFileHandle = handle.unchecked_into();
    let served = match create_sync_handle(&handle).await {
        Ok(h) => {
            h.close();
            true
        }
        Err(e) => error_parts(&e).0 != "NotSupportedError",
    };
    let _ = JsFuture::from(dir.remove_entry(&name)).await;
    served
}

/// A sink whose abort keeps what was written (closes it): a download cut mid-way resumes
/// from those bytes.
struct KeepOnAbort<S>(S);

impl<S: ChunkSink> ChunkSink for KeepOnAbort<S> {
    fn start_write(&mut self, chunk: &js_sys::Uint8Array) -> Result<Option<JsFuture>, JsValue> {
        self.0.start_write(chunk)
    }
    async fn close(&mut self) -> Result<(), JsValue> {
        self.0.close().await
    }
    async fn abort(&mut self) {
        if self.0.close().await.is_err() {
            self.0.abort().await;
        }
    }
}

async fn run_copy<S: ChunkSink>(
    source: Source<'_>,
    sink: S,
    budget: Option<u64>,
    hash: bool,
) -> Result<(f64, Option<String>), LibraryError> {
    let result = match budget {
        Some(left) => copy(source, &mut Budget { inner: sink, left }, hash).await,
        None => {
            let mut sink = sink;
            copy(source, &mut sink, hash).await
        }
    };
    result.map_err(copy_err)
}

/// Hands the whole `Blob` to the writable (`write(blob)`): the browser copies it into the file
/// itself, so the bytes never enter this thread. Measured against the chunked copy (Chromium
/// 156): 100 MB 530 vs 860 ms, 300 x 100 KB 1.56 vs 2.05 s. A source that cannot be read
/// fails the write with `NotReadableError` (`SOURCE_UNREADABLE`); the writable is aborted.
async fn write_whole(handle: &FileSystemFileHandle, stream: &JsValue, source: &Blob) -> Result<f64, LibraryError> {
    let written = match platform::call_async(stream, "write", &[source]).await {
        Ok(_) => platform::call_async(stream, "close", &[]).await.map(drop),
        Err(e) => {
            let _ = platform::call_async(stream, "abort", &[]).await;
            Err(e)
        }
    };
    if let Err(e) = written {
        // The browser reports a source it cannot read (changed or deleted on disk) as
        // `NotReadableError` or `NotFoundError`; tell it from a failing destination by
        // reading one byte of the source.
        if let Ok(probe) = source.slice_with_i32_and_i32(0, 1) {
            if let Err(read) = JsFuture::from(probe.array_buffer()).await {
                let (name, msg) = error_parts(&read);
                return Err(LibraryError::SourceUnreadable(format!("{name}: {msg}")));
            }
        }
        let (name, msg) = error_parts(&e);
        let room = has_room(handle, source.size()).await;
        return Err(LibraryError::from_failed_write("writing the file", &name, &msg, room));
    }
    Ok(source.size())
}

/// Whether the origin has room for `size` bytes in `handle`'s file: grows a writable of it
/// with `truncate` (charged to the quota, nothing copied) and aborts. `None` if unknown.
/// (`navigator.storage.estimate()` cannot say: under a quota set through the DevTools
/// protocol Chromium does not always report it.)
async fn has_room(handle: &FileSystemFileHandle, size: f64) -> Option<bool> {
    let writable = JsFuture::from(handle.create_writable()).await.ok()?;
    let grown = platform::call_async(&writable, "truncate", &[&size.into()]).await;
    let _ = platform::call_async(&writable, "abort", &[]).await;
    match grown {
        Ok(_) => Some(true),
        Err(e) if error_parts(&e).0 == "QuotaExceededError" => Some(false),
        Err(_) => None,
    }
}

/// Whether `source.stream` is the engine's own: a `Blob` subclass or wrapper that overrides
/// it gets the chunked copy, which reads what its `stream()` yields.
fn has_native_stream(source: &Blob) -> bool {
    let native = platform::get(&platform::get(&platform::get(&platform::global(), "Blob"), "prototype"), "stream");
    !native.is_undefined() && platform::get(source, "stream") == native
}

/// Maps a failed copy to the library's vocabulary.
pub fn copy_err(f: CopyFailure) -> LibraryError {
    match f {
        CopyFailure::Locked(why) => ValidationError::StreamLocked(why).into(),
        CopyFailure::NotBytes(what) => ValidationError::NotBytes(what).into(),
        CopyFailure::Read(e) => {
            let (name, msg) = error_parts(&e);
            LibraryError::SourceUnreadable(format!("{name}: {msg}"))
        }
        CopyFailure::Write(e) => dom_err("writing the file")(e),
    }
}

fn is_not_found(e: &JsValue) -> bool {
    matches!(error_parts(e).0.as_str(), "NotFoundError" | "TypeMismatchError")
}

/// `<OPFS root>/opfs-media/<library>/`, created where missing.
async fn open_dir(library: &str) -> Result<FileSystemDirectoryHandle, LibraryError> {
    let unavailable = |why: String| LibraryError::StorageUnavailable(format!("OPFS: {why}"));
    let storage = platform::storage_manager().ok_or_else(|| unavailable("navigator.storage is missing".into()))?;
    let root = platform::call_async(&storage, "getDirectory", &[])
        .await
        .map_err(|e| unavailable(format!("getDirectory() failed: {}", error_parts(&e).1)))?;
    let root: FileSystemDirectoryHandle =
        root.dyn_into().map_err(|_| unavailable("getDirectory() did not return a directory handle".into()))?;
    let top = subdir(&root, "opfs-media").await?;
    subdir(&top, library).await
}

async fn subdir(parent: &FileSystemDirectoryHandle, name: &str) -> Result<FileSystemDirectoryHandle, LibraryError> {
    let opts = FileSystemGetDirectoryOptions::new();
    opts.set_create(true);
    let d = JsFuture::from(parent.get_directory_handle_with_options(name, &opts)).await.map_err(|e| {
        LibraryError::StorageUnavailable(format!("OPFS: cannot open directory {name:?}: {}", error_parts(&e).1))
    })?;
    Ok(d.unchecked_into())
}
