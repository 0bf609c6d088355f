//! Seeded simulation of resumable uploads: the sans-IO `ChunkedUpload` machine, driven the
//! way the service drives it (real SHA-256 checkpoints, persisted progress), against a
//! simulated server that loses requests and replies, duplicates appends, damages chunks,
//! expires sessions and is busy, while the client crashes and restarts from what it persisted.
//!
//! Invariants (each run):
//! - no chunk the server confirmed is sent again after the client persisted that
//!   confirmation, while the session that confirmed it lives;
//! - the asset the server commits holds exactly the file's bytes;
//! - bytes: the server appended exactly the file once plus what dropped sessions held, and the
//!   client sent at most that plus the chunks a fault refused (see `check_bytes`);
//! - an attempt ends in failure only for a fault the simulation injected into it;
//! - the upload finishes.
//!
//! `broken_clients_are_caught` drives deliberately broken clients to show the checks bite.

use opfs_media::digest::Sha256State;
use opfs_media::sync::chunked::{Action, ChunkedUpload, Reply, UploadProgress};
use opfs_media::sync::engine::{Meta, Outcome, RemoteAsset, Reply as EngineReply};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.next() % 1000 < per_mille
    }
}

struct Session {
    generation: u64,
    bytes: Vec<u8>,
    hash: Sha256State,
}

#[derive(Default)]
struct Server {
    session: Option<Session>,
    generation: u64,
    asset: Option<(Vec<u8>, String)>,
    /// Bytes appended to any session (after the offset and digest checks passed).
    appended_bytes: u64,
    /// Bytes that were appended to a session the server then dropped (expired, or a
    /// whole-file checksum mismatch): they must be sent again.
    dropped_bytes: u64,
}

fn remote(sha: &str) -> RemoteAsset {
    RemoteAsset {
        id: "a".into(),
        sha256: sha.into(),
        meta: Meta { name: "n".into(), tags: vec![] },
        version: 1,
        updated_at: 1,
        updated_by: None,
    }
}

impl Server {
    fn expire(&mut self) {
        if let Some(s) = self.session.take() {
            self.dropped_bytes += s.bytes.len() as u64;
        }
    }

    fn create(&mut self, sha: Option<&str>) -> Reply {
        if let Some((_, stored)) = &self.asset {
            return match sha {
                Some(s) if s != stored => Reply::Other(Outcome::Failed {
                    status: 409,
                    code: "ID_CONFLICT".into(),
                    current: None,
                    retry_after: None,
                }),
                _ => Reply::Asset(remote(stored)),
            };
        }
        if self.session.is_none() {
            self.generation += 1;
            self.session = Some(Session { generation: self.generation, bytes: Vec::new(), hash: Sha256State::new() });
        }
        Reply::Session { offset: self.session.as_ref().unwrap().bytes.len() as u64, busy: false }
    }

    fn append(&mut self, offset: u64, chunk: &[u8], sent_digest: &[u8; 32], whole: Option<&str>, size: u64) -> Reply {
        let Some(s) = self.session.as_mut() else { return Reply::NotFound };
        if offset != s.bytes.len() as u64 {
            return Reply::OffsetMismatch { offset: s.bytes.len() as u64 };
        }
        let mut h = Sha256State::new();
        h.update(chunk);
        if &h.finish() != sent_digest {
            return Reply::DigestMismatch;
        }
        let last = offset + chunk.len() as u64 == size;
        if last && whole.is_none() {
            return Reply::Other(Outcome::Failed {
                status: 400,
                code: "MISSING_CHECKSUM".into(),
                current: None,
                retry_after: None,
            });
        }
        self.appended_bytes += chunk.len() as u64;
        s.bytes.extend_from_slice(chunk);
        s.hash.update(chunk);
        if !last {
            return Reply::Session { offset: s.bytes.len() as u64, busy: false };
        }
        let s = self.session.take().unwrap();
        let got = s.hash.finish_hex();
        if Some(got.as_str()) != whole {
            self.dropped_bytes += s.bytes.len() as u64;
            return Reply::ChecksumMismatch;
        }
        self.asset = Some((s.bytes, got.clone()));
        Reply::Asset(remote(&got))
    }
}

/// What the client persisted, and which server session confirmed it.
struct Disk {
    progress: Option<UploadProgress>,
    confirmed_by: Option<(u64, u64)>,
}

/// Deliberately broken clients, to show that the checks catch them.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Bug {
    None,
    /// After a reload, sends the first chunk again before asking the server where it stands
    /// (a client that starts over from byte 0 instead of resuming).
    StartOverAfterReload,
    /// Sends every chunk twice (a client that retries an append whose reply it already has,
    /// with no fault to excuse it): the server refuses the second copy, nothing breaks but
    /// the bytes on the wire.
    SendsEachChunkTwice,
}

/// The byte ledger. The server appends only at its own offset, so within one session every
/// byte of the file is appended at most once; a session either commits (the file: `size`
/// bytes, once) or is dropped with what it held. Hence `appended == size + dropped`, exactly.
/// Every byte the client sends is either appended or refused; a refusal is excused only by a
/// fault the simulation injected into that request (lost before the server, damaged in
/// transit, its session expired). Hence `sent <= size + dropped + refused_by_faults`: more
/// means the client sent bytes the server already had, with nothing to make it.
fn check_bytes(seed: u64, size: u64, server: &Server, sent: u64, excused: u64) -> Result<(), String> {
    if server.appended_bytes != size + server.dropped_bytes {
        return Err(format!(
            "seed {seed}: the server appended {} bytes for a file of {size} with {} dropped",
            server.appended_bytes, server.dropped_bytes
        ));
    }
    let bound = size + server.dropped_bytes + excused;
    if sent > bound {
        return Err(format!(
            "seed {seed}: the client sent {sent} bytes, over the {bound} that the file ({size}), dropped sessions ({}) and faulted chunks ({excused}) excuse",
            server.dropped_bytes
        ));
    }
    Ok(())
}

fn run(seed: u64, bug: Bug) -> Result<(), String> {
    let mut rng = Rng(seed);
    let size = 1 + rng.next() % 2000;
    let chunk = 64 * (1 + rng.next() % 6);
    let file: Vec<u8> = (0..size).map(|_| rng.next() as u8).collect();
    let want = {
        let mut h = Sha256State::new();
        h.update(&file);
        h.finish_hex()
    };
    let fault = 20 + rng.next() % 120; // per mille, per request
    let mut server = Server::default();
    let mut disk = Disk { progress: None, confirmed_by: None };
    // Bytes of every append the client sent, and of those a fault refused.
    let (mut sent, mut excused) = (0u64, 0u64);
    for attempt in 0..400 {
        // Faults injected into this attempt: an attempt may end in failure only for them.
        let (mut faults, mut damaged, mut locked) = (0u32, 0u32, 0u32);
        // (Re)start, as after a reload: restore the hash from what was persisted.
        let restored = disk.progress.as_ref().and_then(|p| Sha256State::restore(&p.checkpoint).map(|h| (p, h)));
        let (progress, mut hash) = match restored {
            Some((p, h)) if h.len() == p.offset => (Some(p.clone()), h),
            _ => (None, Sha256State::new()),
        };
        let mut m = ChunkedUpload::new(size, chunk, progress.as_ref());
        if hash.len() != m.resume_offset() {
            return Err(format!("seed {seed}: resume at {} with a hash of {}", m.resume_offset(), hash.len()));
        }
        if bug == Bug::StartOverAfterReload && m.resume_offset() > 0 {
            let len = chunk.min(size);
            let mut d = Sha256State::new();
            d.update(&file[..len as usize]);
            if let (Some((generation, confirmed)), Some(s)) = (disk.confirmed_by, &server.session) {
                if s.generation == generation && confirmed > 0 {
                    return Err(format!(
                        "seed {seed}: re-sent offset 0 after persisting {confirmed} confirmed by the same session"
                    ));
                }
            }
            sent += len;
            if server.session.is_none() {
                excused += len;
            }
            let whole = (len == size).then(|| want.clone());
            server.append(0, &file[..len as usize], &d.finish(), whole.as_deref(), size);
        }
        let mut steps = 0;
        loop {
            steps += 1;
            if steps > 10_000 {
                return Err(format!("seed {seed}: attempt {attempt} does not end"));
            }
            if rng.chance(fault / 4) {
                break; // the tab crashes: everything in memory is gone
            }
            if rng.chance(fault / 6) && server.session.is_some() {
                server.expire();
                faults += 1;
            }
            let action = m.next_action();
            let r = match action {
                Action::Create { with_sha } => {
                    let sha = with_sha.then(|| hash.clone().finish_hex());
                    if with_sha && hash.len() != size {
                        return Err(format!("seed {seed}: create with a digest of {} of {size} bytes", hash.len()));
                    }
                    if rng.chance(fault) {
                        faults += 1;
                        m.on_reply(Reply::Other(Outcome::Network))
                    } else {
                        let mut reply = server.create(sha.as_deref());
                        if let Reply::Session { busy, .. } = &mut reply {
                            *busy = rng.chance(fault / 3); // a cut append not yet noticed
                            faults += u32::from(*busy);
                        }
                        if rng.chance(fault) {
                            faults += 1;
                            m.on_reply(Reply::Other(Outcome::Network)) // reply lost
                        } else {
                            m.on_reply(reply)
                        }
                    }
                }
                Action::Rehash { from, to, reset } => {
                    if reset {
                        hash = Sha256State::new();
                    }
                    if hash.len() != from || to > size || from > to {
                        return Err(format!("seed {seed}: rehash {from}..{to} with a hash of {}", hash.len()));
                    }
                    hash.update(&file[from as usize..to as usize]);
                    m.rehashed(to);
                    None
                }
                Action::Persist { offset } => {
                    if hash.len() != offset {
                        return Err(format!("seed {seed}: persist {offset} with a hash of {}", hash.len()));
                    }
                    let cp = hash.checkpoint().ok_or_else(|| format!("seed {seed}: persist off a block boundary"))?;
                    disk.progress = Some(UploadProgress { size, offset, checkpoint: cp });
                    // The high-water mark per session: persisting a smaller offset later
                    // (a buggy client) must not excuse re-sending what was confirmed.
                    disk.confirmed_by = server.session.as_ref().map(|s| match disk.confirmed_by {
                        Some((g, hw)) if g == s.generation => (g, hw.max(offset)),
                        _ => (s.generation, offset),
                    });
                    m.persisted(offset);
                    None
                }
                Action::Append { offset, len, last } => {
                    if let (Some((generation, confirmed)), Some(s)) = (disk.confirmed_by, &server.session) {
                        if s.generation == generation && offset < confirmed {
                            return Err(format!(
                                "seed {seed}: re-sent offset {offset} after persisting {confirmed} confirmed by the same session"
                            ));
                        }
                    }
                    if len == 0 || (!last && len % 64 != 0) || offset + len > size {
                        return Err(format!("seed {seed}: bad chunk {offset}+{len} of {size}"));
                    }
                    let bytes = &file[offset as usize..(offset + len) as usize];
                    let mut aside = hash.clone();
                    aside.update(bytes);
                    let whole = last.then(|| aside.clone().finish_hex());
                    let mut d = Sha256State::new();
                    d.update(bytes);
                    let digest = d.finish();
                    let mut wire = bytes.to_vec();
                    let copies = if bug == Bug::SendsEachChunkTwice { 2 } else { 1 };
                    sent += copies * len;
                    // A refusal not of the client's doing: damaged in transit, its session
                    // expired under it, or lost before the server.
                    let mut refused_by_fault = server.session.is_none();
                    if rng.chance(fault / 5) {
                        wire[0] ^= 1; // damaged in transit
                        faults += 1;
                        damaged += 1;
                        refused_by_fault = true;
                    }
                    let lost = rng.chance(fault);
                    if refused_by_fault || lost {
                        excused += len;
                    }
                    let reply = if lost {
                        faults += 1;
                        Reply::Other(Outcome::Network)
                    } else {
                        let first = server.append(offset, &wire, &digest, whole.as_deref(), size);
                        if bug == Bug::SendsEachChunkTwice {
                            server.append(offset, &wire, &digest, whole.as_deref(), size);
                        }
                        if rng.chance(fault / 3) {
                            // Duplicated by the network: the client hears one of the two.
                            faults += 1;
                            let second = server.append(offset, &wire, &digest, whole.as_deref(), size);
                            if rng.chance(500) {
                                second
                            } else {
                                first
                            }
                        } else if rng.chance(fault) {
                            faults += 1;
                            Reply::Other(Outcome::Network)
                        } else if rng.chance(fault / 5) {
                            faults += 1;
                            locked += 1;
                            Reply::Locked { retry_after: Some(1) }
                        } else {
                            first
                        }
                    };
                    let r = m.on_reply(reply);
                    if m.commit_chunk(offset, len) {
                        hash = aside;
                    }
                    r
                }
                Action::Wait { .. } => {
                    m.waited();
                    None
                }
                Action::Done(o) => Some(Action::Done(o)),
            };
            match r {
                Some(Action::Done(Outcome::Ok(EngineReply::Asset(a)))) => {
                    let (bytes, sha) =
                        server.asset.as_ref().ok_or_else(|| format!("seed {seed}: done, nothing committed"))?;
                    if bytes != &file || *sha != want || a.sha256 != want {
                        return Err(format!("seed {seed}: the server holds other bytes"));
                    }
                    return check_bytes(seed, size, &server, sent, excused);
                }
                // No reply, or the machine gave up on a busy or moving session: only a fault
                // injected into this attempt may cause that.
                Some(Action::Done(Outcome::Network)) if faults > 0 => break,
                // Two damaged chunks in one attempt (the machine retries one), or a session
                // locked past the machine's patience: permanent for this attempt; the engine
                // would back off and try again, as the next attempt here does.
                Some(Action::Done(Outcome::Failed { code, .. }))
                    if (code == "DIGEST_MISMATCH" && damaged >= 2) || (code == "UPLOAD_LOCKED" && locked >= 1) =>
                {
                    break
                }
                Some(Action::Done(Outcome::Failed { status, code, .. })) => {
                    return Err(format!(
                        "seed {seed}: attempt {attempt} failed {status} {code} with {faults} faults injected"
                    ));
                }
                Some(Action::Done(other)) => return Err(format!("seed {seed}: {other:?}")),
                Some(Action::Wait { .. }) => m.waited(), // the caller sleeps, then goes on
                Some(_) => {}
                None => {}
            }
        }
    }
    Err(format!("seed {seed}: not finished after 400 attempts"))
}

fn run_seeds(seeds: u64, bug: Bug) -> Vec<String> {
    (0..seeds).filter_map(|s| run(s, bug).err()).collect()
}

#[test]
fn chunked_uploads_survive_lost_duplicated_and_damaged_requests_crashes_and_expiry() {
    let seeds: u64 = match std::env::var("CHUNKED_SIM_SEEDS") {
        Ok(s) => s.parse().expect("CHUNKED_SIM_SEEDS must be a whole number"),
        Err(_) => 3000,
    };
    assert!(seeds > 0, "CHUNKED_SIM_SEEDS=0 runs nothing: a simulation of no seeds proves nothing");
    let failures = run_seeds(seeds, Bug::None);
    println!("chunked simulation: {seeds} seeded runs, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {seeds} runs broke an invariant, e.g.:\n{}",
        failures.len(),
        failures[..failures.len().min(5)].join("\n")
    );
}

/// Each check, run against a client broken on purpose, fails: they are known to bite.
#[test]
fn broken_clients_are_caught() {
    for (bug, expect) in
        [(Bug::StartOverAfterReload, "re-sent offset 0 after persisting"), (Bug::SendsEachChunkTwice, "faulted chunks")]
    {
        let failures = run_seeds(200, bug);
        assert!(failures.len() >= 100, "{bug:?} slipped through {} of 200 runs", 200 - failures.len());
        assert!(
            failures.iter().any(|f| f.contains(expect)),
            "{bug:?} was not caught by its check: {:?}",
            &failures[..3.min(failures.len())]
        );
    }
}
