//! The durable write of an upload's bytes to local storage (`file://`), used instead of
//! `object_store`'s local multipart upload, which never calls `fsync`: an acknowledged upload
//! must survive a power cut (docs/protocol.md, POST step 5), so the bytes are written to a
//! staging file `<object>#0`, flushed (`fdatasync`), renamed to the object's path, and the
//! directory is flushed (`fsync`) so the rename itself is on disk before the row commits.
//!
//! Throughput: body frames (16-64 KiB from hyper) are gathered into [`BATCH_BYTES`] and written
//! on the blocking pool with one vectored write per batch, while the next batch is received
//! and hashed: one write in flight, so memory stays at about two batches ([`BatchedAppend`],
//! also used by the resumable extension's appends). A small body is written, flushed and
//! renamed in one blocking task.

use std::fs::File;
use std::io::{IoSlice, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered before they go to the file (small enough that a cut upload has visibly
/// started its staging file after a few hundred KB, as scripts/test-server-faults.sh checks).
pub const BATCH_BYTES: usize = 512 * 1024;

/// Body frames written to an open file from `offset` on, in batches of [`BATCH_BYTES`]: one
/// vectored write on the blocking pool in flight while the next batch gathers. Serves a new
/// object's staging file ([`LocalWrite`]) and a resumable upload's appends.
pub struct BatchedAppend {
    /// The file while no write is in flight (moved into the write, and back).
    file: Option<File>,
    in_flight: Option<JoinHandle<std::io::Result<File>>>,
    pending: Vec<Bytes>,
    pending_len: usize,
    /// Where the next batch goes.
    offset: u64,
}

impl BatchedAppend {
    /// Appends to `file`, whose cursor is at `offset`.
    pub fn new(file: File, offset: u64) -> Self {
        Self { file: Some(file), in_flight: None, pending: Vec::new(), pending_len: 0, offset }
    }

    /// Takes one frame; writes a batch once [`BATCH_BYTES`] have gathered.
    pub async fn put(&mut self, data: Bytes) -> std::io::Result<()> {
        self.pending_len += data.len();
        self.pending.push(data);
        if self.pending_len >= BATCH_BYTES {
            let file = self.settle().await?;
            let batch = std::mem::take(&mut self.pending);
            self.pending_len = 0;
            let (offset, len) = (self.offset, file_len(&batch));
            self.offset += len;
            self.in_flight = Some(tokio::task::spawn_blocking(move || {
                let mut file = file;
                write_batch(&mut file, &batch)?;
                start_writeback(&file, offset, len);
                Ok(file)
            }));
        }
        Ok(())
    }

    /// Waits for the write in flight; the file and the frames not written yet.
    pub async fn into_parts(mut self) -> std::io::Result<(File, Vec<Bytes>)> {
        let file = self.settle().await?;
        Ok((file, self.pending))
    }

    /// Writes the rest and flushes the file's data to disk (`fdatasync`).
    pub async fn finish(self) -> std::io::Result<File> {
        let (mut file, rest) = self.into_parts().await?;
        tokio::task::spawn_blocking(move || {
            write_batch(&mut file, &rest)?;
            file.sync_data()?;
            Ok(file)
        })
        .await
        .map_err(join_err)?
    }

    async fn settle(&mut self) -> std::io::Result<File> {
        match (self.in_flight.take(), self.file.take()) {
            (Some(h), _) => h.await.map_err(join_err)?,
            (None, Some(f)) => Ok(f),
            (None, None) => Err(std::io::Error::other("a failed batch lost the file")),
        }
    }
}

/// An object being written under a local storage root.
pub struct LocalWrite {
    dest: PathBuf,
    staging: PathBuf,
    /// Frames gathered before the staging file is opened (with the first full batch).
    first: Vec<Bytes>,
    first_len: usize,
    out: Option<BatchedAppend>,
    /// Directories made for this object (their parents are flushed too).
    created_dir: bool,
}

impl LocalWrite {
    /// Prepares the write of `key` (an object path, relative) under `root`; nothing is touched
    /// on disk until the first batch.
    pub fn new(root: &Path, key: &str) -> Self {
        let dest = root.join(key);
        let mut staging = dest.clone().into_os_string();
        staging.push("#0");
        Self { dest, staging: staging.into(), first: Vec::new(), first_len: 0, out: None, created_dir: false }
    }

    /// Takes one frame of the body; writes a batch once [`BATCH_BYTES`] have gathered.
    pub async fn put(&mut self, data: Bytes) -> std::io::Result<()> {
        if let Some(out) = &mut self.out {
            return out.put(data).await;
        }
        self.first_len += data.len();
        self.first.push(data);
        if self.first_len >= BATCH_BYTES {
            let staging = self.staging.clone();
            let (file, made) =
                tokio::task::spawn_blocking(move || open_staging(&staging)).await.map_err(join_err)??;
            self.created_dir = made;
            let mut out = BatchedAppend::new(file, 0);
            for frame in std::mem::take(&mut self.first) {
                out.put(frame).await?;
            }
            self.out = Some(out);
        }
        Ok(())
    }

    async fn take_file(&mut self) -> std::io::Result<(Option<File>, Vec<Bytes>)> {
        match self.out.take() {
            Some(out) => out.into_parts().await.map(|(f, rest)| (Some(f), rest)),
            None => Ok((None, std::mem::take(&mut self.first))),
        }
    }

    /// Writes the rest, flushes the file, renames it into place and flushes the directory:
    /// when this returns `Ok`, the object is on disk under its final name.
    pub async fn finish(mut self) -> std::io::Result<()> {
        let (file, batch) = self.take_file().await?;
        let (staging, dest, created) = (self.staging.clone(), self.dest.clone(), self.created_dir);
        let res = tokio::task::spawn_blocking(move || {
            let (mut file, created) = match file {
                Some(f) => (f, created),
                None => open_staging(&staging)?,
            };
            write_batch(&mut file, &batch)?;
            file.sync_data()?;
            drop(file);
            std::fs::rename(&staging, &dest)?;
            let dir = dest.parent().unwrap_or(Path::new("."));
            sync_dir(dir)?;
            if created {
                // The object's directory is new: its entry in the parent must be on disk too.
                sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
            }
            Ok(())
        })
        .await
        .map_err(join_err)?;
        if res.is_err() {
            self.staging_gone().await;
        }
        res
    }

    /// Drops the upload: waits for the write in flight and removes the staging file.
    pub async fn abort(mut self) {
        let _ = self.take_file().await;
        self.staging_gone().await;
    }

    async fn staging_gone(&mut self) {
        let staging = self.staging.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(staging)).await;
    }
}

/// Creates the staging file (and its directory if missing: `true` then).
fn open_staging(staging: &Path) -> std::io::Result<(File, bool)> {
    let create = || File::options().write(true).create_new(true).open(staging);
    match create() {
        Ok(f) => Ok((f, false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(staging.parent().unwrap_or(Path::new(".")))?;
            Ok((create()?, true))
        }
        Err(e) => Err(e),
    }
}

fn write_batch(file: &mut File, batch: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = batch.iter().filter(|b| !b.is_empty()).map(|b| IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    while !rest.is_empty() {
        let n = file.write_vectored(rest)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

fn file_len(batch: &[Bytes]) -> u64 {
    batch.iter().map(|b| b.len() as u64).sum()
}

/// Starts writing `len` bytes at `offset` to disk without waiting (Linux `sync_file_range`),
/// so the disk works while the next batch arrives and the final `fdatasync` has little left
/// to do: the upload takes about as long as the slower of the network and the disk, not their
/// sum. Only a hint: durability still comes from `fdatasync` (which this does not replace).
fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain syscall on an open descriptor; no memory is passed.
        unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset as i64, len as i64, libc::SYNC_FILE_RANGE_WRITE);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Flushes a directory's entries (a rename or a new file in it) to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

fn join_err(e: tokio::task::JoinError) -> std::io::Error {
    std::io::Error::other(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_finished_write_is_under_its_name_and_no_staging_file_stays() {
        let root = std::env::temp_dir().join(format!("opfs-media-localfile-{}", uuid::Uuid::new_v4()));
        let frame = Bytes::from(vec![7u8; 100_000]);
        let mut w = LocalWrite::new(&root, "u/a-big");
        let mut want = Vec::new();
        for _ in 0..100 {
            w.put(frame.clone()).await.unwrap();
            want.extend_from_slice(&frame);
        }
        w.finish().await.unwrap();
        assert_eq!(std::fs::read(root.join("u/a-big")).unwrap(), want);
        let mut small = LocalWrite::new(&root, "u/b-small");
        small.put(Bytes::from_static(b"hello")).await.unwrap();
        small.finish().await.unwrap();
        assert_eq!(std::fs::read(root.join("u/b-small")).unwrap(), b"hello");
        let mut aborted = LocalWrite::new(&root, "u/c-gone");
        aborted.put(Bytes::from(vec![1u8; BATCH_BYTES])).await.unwrap();
        aborted.abort().await;
        let mut names: Vec<_> =
            std::fs::read_dir(root.join("u")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        assert_eq!(names, ["a-big", "b-small"]);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[tokio::test]
    async fn appends_land_after_the_offset_in_order() {
        use std::io::{Seek, SeekFrom};
        let path = std::env::temp_dir().join(format!("opfs-media-append-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, b"head").unwrap();
        let mut want = b"head".to_vec();
        let mut f = File::options().write(true).open(&path).unwrap();
        f.seek(SeekFrom::Start(4)).unwrap();
        let mut out = BatchedAppend::new(f, 4);
        // Frames of uneven sizes, past several batches, and a last one that stays pending.
        for i in 0..40u8 {
            let frame = Bytes::from(vec![i; 30_000 + usize::from(i) * 997]);
            want.extend_from_slice(&frame);
            out.put(frame).await.unwrap();
        }
        out.finish().await.unwrap();
        assert!(std::fs::read(&path).unwrap() == want, "appended bytes differ");
        std::fs::remove_file(path).unwrap();
    }
}
