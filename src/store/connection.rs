//! The catalog's IndexedDB connection, opened again when the browser closes it under the
//! library (site data cleared, the database deleted elsewhere), so later calls reach the fresh one.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use idb::{Database, DatabaseEvent, Factory};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::IdbDatabase;

use crate::error::LibraryError;

/// Creates or upgrades the schema from `old` (0 for a new database).
pub type Upgrade = fn(&Database, u32) -> Result<(), idb::Error>;

/// A shared handle on the connection of one library's catalog.
#[derive(Clone)]
pub struct Connection(Rc<Inner>);

struct Inner {
    name: String,
    version: u32,
    upgrade: Upgrade,
    db: RefCell<IdbDatabase>,
    /// How many times the connection was opened again after the browser closed it.
    epoch: Cell<u64>,
    /// Closed by the library itself: never opened again.
    closed: Cell<bool>,
    reopening: Cell<bool>,
    /// The `close` / `versionchange` handler of the current connection.
    on_gone: RefCell<Option<Closure<dyn FnMut()>>>,
}

impl Connection {
    /// Opens (creating or upgrading) the database `name` at `version`.
    pub async fn open(name: &str, version: u32, upgrade: Upgrade) -> Result<Self, LibraryError> {
        let (db, _) = open_db(name, version, upgrade).await?;
        let conn = Connection(Rc::new(Inner {
            name: name.to_owned(),
            version,
            upgrade,
            db: RefCell::new(db.clone()),
            epoch: Cell::new(0),
            closed: Cell::new(false),
            reopening: Cell::new(false),
            on_gone: RefCell::new(None),
        }));
        watch(&conn.0, &db);
        Ok(conn)
    }

    /// The current connection.
    pub fn db(&self) -> IdbDatabase {
        self.0.db.borrow().clone()
    }

    /// Changes each time the database had to be created anew after the browser closed the
    /// connection (its contents were deleted): a reader of the catalog's state (the sync
    /// leader) reads it again when this changes.
    pub fn epoch(&self) -> u64 {
        self.0.epoch.get()
    }

    /// Reports that the connection refused a transaction as closed (`InvalidStateError`):
    /// Chromium closes it when the origin's data is cleared without firing `close` on it. It
    /// is opened again in the background (once), unless the library closed it itself.
    pub fn refused_as_closed(&self) {
        if !self.0.closed.get() && !self.0.reopening.replace(true) {
            wasm_bindgen_futures::spawn_local(reopen(Rc::downgrade(&self.0)));
        }
    }

    /// Closes the connection for good (lets tests delete the database).
    pub fn close(&self) {
        self.0.closed.set(true);
        let db = self.db();
        db.set_onclose(None);
        db.set_onversionchange(None);
        db.close();
    }
}

/// Opens the database; also says whether it was created by this open (it did not exist).
async fn open_db(name: &str, version: u32, upgrade: Upgrade) -> Result<(IdbDatabase, bool), LibraryError> {
    let factory = Factory::new().map_err(|e| LibraryError::StorageUnavailable(format!("IndexedDB is missing: {e}")))?;
    let mut req = factory
        .open(name, Some(version))
        .map_err(|e| LibraryError::StorageUnavailable(format!("IndexedDB cannot be opened: {e}")))?;
    let created = Rc::new(Cell::new(false));
    let created_in_upgrade = created.clone();
    req.on_upgrade_needed(move |event| {
        // Errors here abort the upgrade, which makes the open request fail below.
        let Ok(db) = event.database() else { return };
        let old = event.old_version().unwrap_or(0);
        created_in_upgrade.set(old == 0);
        let _ = upgrade(&db, old);
    });
    let db = req.await.map_err(|e| LibraryError::StorageUnavailable(format!("IndexedDB cannot be opened: {e}")))?;
    Ok((db.into(), created.get()))
}

/// Listens for the end of `db`: a `versionchange` (another context deletes or upgrades the
/// database: it must not wait for this one, so it is closed at once) or a `close` (the browser
/// closed it: site data cleared, storage evicted). Unless the library closed it itself, the
/// database is then opened again: after a delete that open waits for it and creates a fresh,
/// empty database; after an upgrade to a newer version it fails (`VersionError`), and calls
/// keep failing with the browser's error, as before.
fn watch(inner: &Rc<Inner>, db: &IdbDatabase) {
    let weak = Rc::downgrade(inner);
    let on_gone = Closure::<dyn FnMut()>::new(move || {
        let Some(inner) = weak.upgrade() else { return };
        inner.db.borrow().close();
        if !inner.closed.get() && !inner.reopening.replace(true) {
            wasm_bindgen_futures::spawn_local(reopen(Rc::downgrade(&inner)));
        }
    });
    db.set_onversionchange(Some(on_gone.as_ref().unchecked_ref()));
    db.set_onclose(Some(on_gone.as_ref().unchecked_ref()));
    // The previous connection's handler is not running: it only spawned `reopen`.
    *inner.on_gone.borrow_mut() = Some(on_gone);
}

async fn reopen(weak: Weak<Inner>) {
    let Some(inner) = weak.upgrade() else { return };
    if let Ok((db, created)) = open_db(&inner.name, inner.version, inner.upgrade).await {
        if inner.closed.get() {
            db.close();
        } else {
            let old = inner.db.replace(db.clone());
            old.set_onclose(None);
            old.set_onversionchange(None);
            watch(&inner, &db);
            // Only a database made anew (the old one was deleted) has lost what readers hold;
            // the same database opened again (a connection refused for another reason) has not.
            if created {
                inner.epoch.set(inner.epoch.get() + 1);
            }
        }
    }
    inner.reopening.set(false);
}
