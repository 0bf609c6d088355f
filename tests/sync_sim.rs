//! Deterministic, seeded simulation of several sync clients and a protocol server over a
//! faulty network: dropped requests, lost responses (the server applied the request), 5xx,
//! 429 with Retry-After, duplicated and reordered responses, clients killed mid-request and
//! restarted from their persisted state, write-backs that never happen (a crash between a
//! state change and its persistence), server restarts that cut every request in flight,
//! clients whose clocks differ, concurrent edits and deletes of the same asset.
//! After every run: nothing imported is lost, every client converges to the server's state,
//! and the upload bytes that crossed the network are counted at the client's side, not at a
//! server that deduplicates: no client re-sends an asset after it persisted the server's
//! confirmation, and each asset is sent at most once more than the faults that hit it.
//! `broken_clients_are_caught` runs deliberately broken clients to show both checks bite.
#![cfg(not(target_arch = "wasm32"))]

use std::collections::{BTreeMap, BTreeSet};

use opfs_media::asset::SyncStatus;
use opfs_media::sync::engine::{
    Change, Config, Engine, Event, LocalAsset, Meta, Outcome, RemoteAsset, Reply, Request, Resolution, SyncState,
};

/// splitmix64: small, seedable, good enough for choosing faults.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

#[derive(Clone, Debug)]
struct ServerAsset {
    sha256: String,
    meta: Meta,
    version: i64,
    updated_at: i64,
    deleted: bool,
    seq: u64,
}

/// The protocol's semantics (docs/protocol.md), in memory, for one user. It deduplicates
/// uploads by id, as a real server does, so it cannot tell whether a client sent bytes twice:
/// the simulation counts sends at the clients instead.
#[derive(Default)]
struct Server {
    assets: BTreeMap<String, ServerAsset>,
    seq: u64,
}

impl Server {
    fn remote(id: &str, a: &ServerAsset) -> RemoteAsset {
        RemoteAsset {
            id: id.into(),
            sha256: a.sha256.clone(),
            meta: a.meta.clone(),
            version: a.version,
            updated_at: a.updated_at,
            updated_by: None,
        }
    }
    fn fail(status: u16, code: &str, current: Option<RemoteAsset>) -> Outcome {
        Outcome::Failed { status, code: code.into(), current, retry_after: None }
    }
    fn handle(&mut self, req: &Request, now: i64) -> Outcome {
        match req {
            Request::Upload { id, sha256, meta } => match self.assets.get(id) {
                Some(a) if a.deleted => Self::fail(409, "ASSET_DELETED", None),
                Some(a) if &a.sha256 == sha256 => Outcome::Ok(Reply::Asset(Self::remote(id, a))),
                Some(a) => Self::fail(409, "ID_CONFLICT", Some(Self::remote(id, a))),
                None => {
                    self.seq += 1;
                    let a = ServerAsset {
                        sha256: sha256.clone(),
                        meta: meta.clone(),
                        version: 1,
                        updated_at: now,
                        deleted: false,
                        seq: self.seq,
                    };
                    let r = Self::remote(id, &a);
                    self.assets.insert(id.clone(), a);
                    Outcome::Ok(Reply::Asset(r))
                }
            },
            Request::Patch { id, if_match, meta } => match self.assets.get_mut(id) {
                None => Self::fail(404, "NOT_FOUND", None),
                Some(a) if a.deleted => Self::fail(404, "NOT_FOUND", None),
                Some(a) if a.version != *if_match => Self::fail(412, "PRECONDITION_FAILED", Some(Self::remote(id, a))),
                Some(a) => {
                    self.seq += 1;
                    a.meta = meta.clone();
                    a.version += 1;
                    a.updated_at = now.max(a.updated_at + 1);
                    a.seq = self.seq;
                    Outcome::Ok(Reply::Asset(Self::remote(id, a)))
                }
            },
            Request::Delete { id } => match self.assets.get_mut(id) {
                None => Self::fail(404, "NOT_FOUND", None),
                Some(a) => {
                    if !a.deleted {
                        self.seq += 1;
                        a.deleted = true;
                        a.version += 1;
                        a.seq = self.seq;
                    }
                    Outcome::Ok(Reply::Deleted)
                }
            },
            Request::Changes { cursor } => {
                let after: u64 = cursor.as_deref().map_or(0, |c| c.parse().expect("our own cursor"));
                let mut page: Vec<(&String, &ServerAsset)> =
                    self.assets.iter().filter(|(_, a)| a.seq > after).collect();
                page.sort_by_key(|(_, a)| a.seq);
                let has_more = page.len() > 3;
                page.truncate(3);
                let next = page.last().map_or(after, |(_, a)| a.seq);
                let changes = page
                    .into_iter()
                    .map(|(id, a)| {
                        if a.deleted {
                            Change::Tombstone { id: id.clone() }
                        } else {
                            Change::Live(Self::remote(id, a))
                        }
                    })
                    .collect();
                Outcome::Ok(Reply::Changes { changes, next_cursor: next.to_string(), has_more })
            }
        }
    }
}

struct Client {
    engine: Engine,
    persisted: SyncState,
    incarnation: u32,
    seed: u64,
    /// This client's clock minus the simulation's (clocks differ between devices).
    clock_offset: i64,
}

impl Client {
    fn persist(&mut self) {
        if self.engine.take_dirty() {
            self.persisted = self.engine.state().clone();
        }
    }
    /// Whether the persisted state holds the server's confirmation of `id`'s upload.
    fn persisted_confirmed(&self, id: &str) -> bool {
        self.persisted.assets.get(id).is_some_and(|a| a.remote_version.is_some())
    }
}

/// Deliberately broken clients, to show that the byte checks catch them.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Bug {
    None,
    /// Sends an asset's bytes once more after it persisted the confirmation (a client that
    /// re-queues synced assets, e.g. after reading back a stale record).
    ResendAfterPersistedConfirmation,
    /// Sends the bytes again right after the confirmation arrives, before persisting it (a
    /// client that retries an upload whose reply it already had), with no fault to excuse it.
    RetryWithoutFault,
}

enum Msg {
    ToServer { client: usize, inc: u32, req_id: u64, req: Request, drop_response: bool },
    ToClient { client: usize, inc: u32, req_id: u64, outcome: Outcome },
}

struct Faults {
    drop_request: u64,
    drop_response: u64,
    server_error: u64,
    rate_limited: u64,
    duplicate: u64,
    crash: u64,
    /// A client's write-back of a reply never happens (in percent of replies).
    lost_write: u64,
    /// The server restarts: every request in flight is cut; its stored state is kept.
    server_restart: u64,
}

struct Sim {
    rng: Rng,
    now: i64,
    server: Server,
    clients: Vec<Client>,
    net: Vec<(i64, u64, Msg)>,
    tie: u64,
    imported: BTreeMap<String, String>,
    deleted: BTreeSet<String>,
    next_asset: u64,
    bug: Bug,
    /// Upload requests (the asset's bytes) that left a client, per asset.
    sent: BTreeMap<String, u32>,
    /// Faults that can make a client send an asset's bytes again, per asset: a lost request
    /// or reply, a 5xx or 429 answer, a server restart, a client crash while the upload was
    /// in flight or its confirmation not yet persisted.
    faults: BTreeMap<String, u32>,
    /// Which (client, incarnation, request) carried which asset's bytes.
    uploads: BTreeMap<(usize, u32, u64), String>,
    /// Broken invariants, reported by `check`.
    violations: Vec<String>,
}

const TIMEOUT_MS: i64 = 3_000;

impl Sim {
    fn new(seed: u64, clients: usize, bug: Bug) -> Self {
        let cfg = Config { concurrency: 3, base_delay_ms: 200, max_delay_ms: 5_000 };
        let mut rng = Rng(seed);
        let clients = (0..clients)
            .map(|i| {
                let seed = seed * 31 + i as u64;
                Client {
                    engine: Engine::new(SyncState::default(), cfg.clone(), seed),
                    persisted: SyncState::default(),
                    incarnation: 0,
                    seed,
                    clock_offset: rng.below(10_001) as i64 - 5_000,
                }
            })
            .collect();
        Sim {
            rng,
            now: 1_000_000,
            server: Server::default(),
            clients,
            net: Vec::new(),
            tie: 0,
            imported: BTreeMap::new(),
            deleted: BTreeSet::new(),
            next_asset: 0,
            bug,
            sent: BTreeMap::new(),
            faults: BTreeMap::new(),
            uploads: BTreeMap::new(),
            violations: Vec::new(),
        }
    }

    /// Client `c`'s clock.
    fn clock(&self, c: usize) -> i64 {
        self.now + self.clients[c].clock_offset
    }

    fn fault(&mut self, req: &Request) {
        if let Request::Upload { id, .. } = req {
            *self.faults.entry(id.clone()).or_default() += 1;
        }
    }

    /// Counts an upload leaving client `c`, and checks it is not one it already confirmed.
    fn count_send(&mut self, c: usize, req: &Request) {
        if let Request::Upload { id, .. } = req {
            *self.sent.entry(id.clone()).or_default() += 1;
            if self.clients[c].persisted_confirmed(id) {
                self.violations.push(format!("client {c} sent {id}'s bytes again after persisting their confirmation"));
            }
        }
    }

    fn push(&mut self, delay: i64, msg: Msg) {
        self.tie += 1;
        self.net.push((self.now + delay, self.tie, msg));
    }

    fn pump_client(&mut self, c: usize, f: &Faults, faulty: bool) {
        let now = self.clock(c);
        let mut sends = self.clients[c].engine.poll(now);
        self.clients[c].persist();
        let inc = self.clients[c].incarnation;
        if self.bug == Bug::ResendAfterPersistedConfirmation && self.rng.chance(5) {
            let confirmed: Vec<LocalAsset> = self.clients[c]
                .persisted
                .assets
                .values()
                .filter(|a| a.remote_version.is_some() && a.has_bytes)
                .cloned()
                .collect();
            if let Some(a) = confirmed.first() {
                sends.push((
                    u64::MAX,
                    Request::Upload { id: a.id.clone(), sha256: a.sha256.clone(), meta: a.meta.clone() },
                ));
            }
        }
        for (req_id, req) in sends {
            self.count_send(c, &req);
            if let Request::Upload { id, .. } = &req {
                self.uploads.insert((c, inc, req_id), id.clone());
            }
            let delay = 1 + self.rng.below(40) as i64;
            if faulty && self.rng.chance(f.drop_request) {
                self.fault(&req);
                // Never arrives: the client times out.
                self.push(TIMEOUT_MS, Msg::ToClient { client: c, inc, req_id, outcome: Outcome::Network });
                continue;
            }
            let drop_response = faulty && self.rng.chance(f.drop_response);
            self.push(delay, Msg::ToServer { client: c, inc, req_id, req, drop_response });
        }
    }

    fn local_action(&mut self, c: usize) {
        let now = self.clock(c);
        let roll = self.rng.below(10);
        let ids: Vec<String> = self.clients[c].engine.state().assets.keys().cloned().collect();
        if roll < 4 || ids.is_empty() {
            self.next_asset += 1;
            let id = format!("a{:05}", self.next_asset);
            let sha = format!("sha-{}", self.rng.next());
            self.imported.insert(id.clone(), sha.clone());
            self.clients[c].engine.local_import(LocalAsset {
                id,
                sha256: sha,
                meta: Meta { name: format!("file{}", self.next_asset), tags: vec![] },
                updated_at: now,
                remote_version: None,
                status: SyncStatus::Pending,
                error: None,
                has_bytes: true,
            });
        } else if roll < 8 {
            let id = &ids[self.rng.below(ids.len() as u64) as usize];
            let meta = Meta {
                name: format!("renamed-{}", self.rng.below(1000)),
                tags: vec![format!("t{}", self.rng.below(3))],
            };
            self.clients[c].engine.local_edit(id, meta, now);
        } else {
            let id = ids[self.rng.below(ids.len() as u64) as usize].clone();
            self.deleted.insert(id.clone());
            self.clients[c].engine.local_delete(&id);
        }
        self.clients[c].persist();
    }

    fn crash(&mut self, c: usize) {
        // What the dying client had in flight, or had settled in memory but not yet persisted
        // (a confirmation, a refusal), may be sent again by its next incarnation: each is a
        // fault for that asset.
        let inc = self.clients[c].incarnation;
        let mut hit: BTreeSet<String> = self
            .net
            .iter()
            .filter_map(|(_, _, m)| match m {
                Msg::ToServer { client, inc: i, req_id, .. } | Msg::ToClient { client, inc: i, req_id, .. }
                    if *client == c && *i == inc =>
                {
                    self.uploads.get(&(c, inc, *req_id)).cloned()
                }
                _ => None,
            })
            .collect();
        let (live, saved) = (self.clients[c].engine.state(), &self.clients[c].persisted);
        hit.extend(
            live.assets
                .keys()
                .chain(live.outbox.keys())
                .chain(saved.assets.keys())
                .chain(saved.outbox.keys())
                .filter(|id| {
                    live.assets.get(*id) != saved.assets.get(*id) || live.outbox.get(*id) != saved.outbox.get(*id)
                })
                .cloned(),
        );
        for id in hit {
            *self.faults.entry(id).or_default() += 1;
        }
        let cl = &mut self.clients[c];
        cl.incarnation += 1;
        cl.seed += 1000;
        let cfg = Config { concurrency: 3, base_delay_ms: 200, max_delay_ms: 5_000 };
        cl.engine = Engine::new(cl.persisted.clone(), cfg, cl.seed);
        cl.engine.request_pull();
    }

    /// A restart of the server: every request not yet answered is cut (the client sees a
    /// network error when its timeout fires); what the server stored stays.
    fn restart_server(&mut self) {
        let (cut, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.net).into_iter().partition(|(_, _, m)| matches!(m, Msg::ToServer { .. }));
        self.net = kept;
        for (_, _, m) in cut {
            if let Msg::ToServer { client, inc, req_id, req, .. } = m {
                self.fault(&req);
                self.push(TIMEOUT_MS, Msg::ToClient { client, inc, req_id, outcome: Outcome::Network });
            }
        }
    }

    /// Delivers every message due by `self.now`, in time order (ties random: reordering).
    fn deliver_due(&mut self, f: &Faults, faulty: bool) {
        loop {
            let due: Vec<usize> = (0..self.net.len()).filter(|&i| self.net[i].0 <= self.now).collect();
            if due.is_empty() {
                return;
            }
            let pick = due[self.rng.below(due.len() as u64) as usize];
            let (_, _, msg) = self.net.swap_remove(pick);
            match msg {
                Msg::ToServer { client, inc, req_id, req, drop_response } => {
                    let outcome = if faulty && self.rng.chance(f.server_error) {
                        self.fault(&req);
                        Outcome::Failed { status: 503, code: "UNAVAILABLE".into(), current: None, retry_after: None }
                    } else if faulty && self.rng.chance(f.rate_limited) {
                        self.fault(&req);
                        Outcome::Failed {
                            status: 429,
                            code: "RATE_LIMITED".into(),
                            current: None,
                            retry_after: Some(1),
                        }
                    } else {
                        self.server.handle(&req, self.now)
                    };
                    if drop_response {
                        self.fault(&req);
                        self.push(TIMEOUT_MS, Msg::ToClient { client, inc, req_id, outcome: Outcome::Network });
                    } else {
                        let delay = 1 + self.rng.below(40) as i64;
                        if faulty && self.rng.chance(f.duplicate) {
                            self.push(delay + 5, Msg::ToClient { client, inc, req_id, outcome: outcome.clone() });
                        }
                        self.push(delay, Msg::ToClient { client, inc, req_id, outcome });
                    }
                }
                Msg::ToClient { client, inc, req_id, outcome } => {
                    if self.clients[client].incarnation != inc {
                        continue; // the tab that sent it is gone
                    }
                    let now = self.clock(client);
                    let confirmed_upload = match (&outcome, self.uploads.get(&(client, inc, req_id))) {
                        (Outcome::Ok(Reply::Asset(a)), Some(_)) => Some(a.clone()),
                        _ => None,
                    };
                    self.clients[client].engine.handle(req_id, outcome, now);
                    if let (Bug::RetryWithoutFault, Some(a)) = (self.bug, confirmed_upload) {
                        let again = Request::Upload { id: a.id, sha256: a.sha256, meta: a.meta };
                        self.count_send(client, &again);
                        self.push(1, Msg::ToServer { client, inc, req_id: u64::MAX, req: again, drop_response: false });
                    }
                    // A lost write-back: the change stays in memory only (still dirty, so
                    // the next successful write-back carries it) until a crash loses it.
                    if !(faulty && self.rng.chance(f.lost_write)) {
                        self.clients[client].persist();
                    }
                }
            }
        }
    }

    fn step(&mut self, f: &Faults, faulty: bool, actions: bool) {
        let n = self.clients.len();
        if actions && self.rng.chance(30) {
            let c = self.rng.below(n as u64) as usize;
            self.local_action(c);
        }
        if faulty && self.rng.chance(f.crash) {
            let c = self.rng.below(n as u64) as usize;
            self.crash(c);
        }
        if faulty && self.rng.chance(f.server_restart) {
            self.restart_server();
        }
        if self.rng.chance(10) {
            let c = self.rng.below(n as u64) as usize;
            self.clients[c].engine.request_pull();
        }
        for c in 0..n {
            self.pump_client(c, f, faulty);
        }
        self.deliver_due(f, faulty);
        // Advance to the next event (message or backoff expiry), at most 50 ms at a time.
        let next_msg = self.net.iter().map(|m| m.0).min();
        let next_wake = self.clients.iter().filter_map(|c| c.engine.next_wakeup().map(|t| t - c.clock_offset)).min();
        let target = [next_msg, next_wake].into_iter().flatten().min().unwrap_or(self.now + 50);
        self.now = target.clamp(self.now + 1, self.now + 50);
    }

    fn run(seed: u64, bug: Bug) -> Result<(), String> {
        let f = Faults {
            drop_request: 8,
            drop_response: 8,
            server_error: 6,
            rate_limited: 3,
            duplicate: 8,
            crash: 2,
            lost_write: 5,
            server_restart: 1,
        };
        let mut sim = Sim::new(seed, 3, bug);
        for _ in 0..400 {
            sim.step(&f, true, true);
        }
        // Heal: no faults, no new local changes; everyone pulls until quiet.
        for round in 0..4000 {
            sim.step(&f, false, false);
            if round % 50 == 0 {
                for c in &mut sim.clients {
                    c.engine.request_pull();
                }
            }
            if round > 200 && sim.net.is_empty() && sim.clients.iter().all(|c| c.engine.is_idle()) {
                break;
            }
        }
        for c in &mut sim.clients {
            c.engine.request_pull();
        }
        for _ in 0..400 {
            sim.step(&f, false, false);
            if sim.net.is_empty() && sim.clients.iter().all(|c| c.engine.is_idle()) {
                break;
            }
        }
        sim.check()
    }

    fn check(&self) -> Result<(), String> {
        let live: BTreeMap<&String, &ServerAsset> = self.server.assets.iter().filter(|(_, a)| !a.deleted).collect();
        // Bytes on the wire: never again after a persisted confirmation, and at most once
        // more than the faults that hit the asset.
        if let Some(v) = self.violations.first() {
            return Err(v.clone());
        }
        for (id, &sent) in &self.sent {
            let faults = self.faults.get(id).copied().unwrap_or(0);
            if sent > 1 + faults {
                return Err(format!("{id}'s bytes were sent {sent} times with {faults} faults to excuse re-sending"));
            }
        }
        // Nothing imported is lost: every import nobody deleted is live with its bytes.
        for (id, sha) in &self.imported {
            if self.deleted.contains(id) {
                if live.contains_key(id) {
                    return Err(format!("{id} was deleted but is live on the server"));
                }
                continue;
            }
            match live.get(id) {
                Some(a) if &a.sha256 == sha => {}
                Some(_) => return Err(format!("{id} has other bytes on the server")),
                None => return Err(format!("{id} was imported, never deleted, and is missing on the server")),
            }
        }
        // Convergence: every client holds exactly the server's live assets and metadata.
        for (i, c) in self.clients.iter().enumerate() {
            let st = c.engine.state();
            if !st.outbox.is_empty() || !c.engine.is_idle() {
                return Err(format!("client {i} not idle: outbox {:?}", st.outbox));
            }
            let mine: BTreeSet<&String> = st.assets.keys().collect();
            let theirs: BTreeSet<&String> = live.keys().copied().collect();
            if mine != theirs {
                return Err(format!(
                    "client {i} assets differ: extra {:?}, missing {:?}",
                    mine.difference(&theirs).collect::<Vec<_>>(),
                    theirs.difference(&mine).collect::<Vec<_>>()
                ));
            }
            for (id, a) in &st.assets {
                let s = live[id];
                if a.meta != s.meta || a.sha256 != s.sha256 || a.remote_version != Some(s.version) {
                    return Err(format!(
                        "client {i} {id}: local {:?} v{:?}, server {:?} v{}",
                        a.meta, a.remote_version, s.meta, s.version
                    ));
                }
                if a.status != SyncStatus::Synced {
                    return Err(format!("client {i} {id} ends {:?}", a.status));
                }
            }
        }
        Ok(())
    }
}

/// Runs seeds `1..=seeds` on every core; the failures, as "seed N: why".
fn run_seeds(seeds: u64, bug: Bug) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (1..=seeds)
                        .filter(|seed| seed % threads == t)
                        .filter_map(|seed| Sim::run(seed, bug).err().map(|e| format!("seed {seed}: {e}")))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a simulation thread panicked")).collect()
    })
}

#[test]
fn thousands_of_seeded_runs_converge_without_loss_or_duplicates() {
    let seeds: u64 = match std::env::var("SYNC_SIM_SEEDS") {
        Ok(s) => s.parse().expect("SYNC_SIM_SEEDS must be a whole number"),
        Err(_) => 10_000,
    };
    assert!(seeds > 0, "SYNC_SIM_SEEDS=0 runs nothing: a simulation of no seeds proves nothing");
    let failures = run_seeds(seeds, Bug::None);
    println!("sync simulation: {seeds} seeded runs, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {seeds} runs failed; first: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

fn new_asset(id: &str) -> LocalAsset {
    LocalAsset {
        id: id.into(),
        sha256: format!("sha-{id}"),
        meta: Meta { name: "n".into(), tags: vec![] },
        updated_at: 0,
        remote_version: None,
        status: SyncStatus::Pending,
        error: None,
        has_bytes: true,
    }
}

#[test]
fn lost_upload_response_then_retry_stores_once() {
    let mut e = Engine::new(SyncState::default(), Config::default(), 1);
    let mut server = Server::default();
    e.local_import(new_asset("x"));
    let (id, req) = e.poll(0).remove(0);
    let _lost = server.handle(&req, 0);
    e.handle(id, Outcome::Network, 10);
    assert_eq!(e.state().assets["x"].status, SyncStatus::Pending);
    assert!(e.poll(10).is_empty(), "backing off");
    let t = e.next_wakeup().unwrap();
    let (id2, req2) = e.poll(t).remove(0);
    let reply = server.handle(&req2, t);
    e.handle(id2, reply.clone(), t);
    e.handle(id2, reply, t); // a duplicated response is ignored
    assert_eq!(server.assets.len(), 1);
    assert!(e.poll(t + 60_000).is_empty(), "two sends for one lost reply, and nothing more");
    assert_eq!(e.state().assets["x"].status, SyncStatus::Synced);
    assert!(e.is_idle());
}

#[test]
fn permanent_errors_keep_the_servers_code_and_the_local_asset() {
    let mut e = Engine::new(SyncState::default(), Config::default(), 1);
    e.local_import(new_asset("x"));
    let (id, _) = e.poll(0).remove(0);
    e.handle(
        id,
        Outcome::Failed { status: 413, code: "PAYLOAD_TOO_LARGE".into(), current: None, retry_after: None },
        1,
    );
    let a = &e.state().assets["x"];
    assert_eq!(a.status, SyncStatus::Error);
    assert_eq!(a.error.as_ref().unwrap().code, "PAYLOAD_TOO_LARGE");
    assert!(e.state().outbox.is_empty(), "not retried");
}

#[test]
fn retry_after_is_honoured() {
    let mut e = Engine::new(SyncState::default(), Config { base_delay_ms: 10, ..Config::default() }, 1);
    e.local_import(new_asset("x"));
    let (id, _) = e.poll(0).remove(0);
    e.handle(id, Outcome::Failed { status: 429, code: "RATE_LIMITED".into(), current: None, retry_after: Some(30) }, 0);
    assert!(e.next_wakeup().unwrap() >= 30_000);
    assert!(e.poll(29_999).is_empty());
    assert_eq!(e.poll(30_000).len(), 1);
}

#[test]
fn a_delete_of_an_asset_the_engine_never_saw_still_reaches_the_server() {
    let mut e = Engine::new(SyncState::default(), Config::default(), 1);
    e.local_delete("deleted-in-another-tab");
    let sent = e.poll(0);
    assert_eq!(sent.len(), 1);
    assert!(matches!(&sent[0].1, Request::Delete { id } if id == "deleted-in-another-tab"));
    e.handle(sent[0].0, Outcome::Failed { status: 404, code: "NOT_FOUND".into(), current: None, retry_after: None }, 0);
    assert!(e.is_idle());
}

#[test]
fn an_app_resolver_replaces_last_writer_wins() {
    let mut synced = new_asset("x");
    synced.remote_version = Some(1);
    synced.status = SyncStatus::Synced;
    let mut state = SyncState::default();
    state.assets.insert("x".into(), synced);
    let mut e = Engine::new(state, Config::default(), 1);
    // Keep our name, take the union of tags: decided the same way on every device.
    e.set_resolver(Some(Box::new(|local: &LocalAsset, remote: &RemoteAsset| {
        let mut tags = local.meta.tags.clone();
        tags.extend(remote.meta.tags.iter().cloned());
        tags.sort();
        tags.dedup();
        Resolution::Merged(Meta { name: local.meta.name.clone(), tags })
    })));
    e.local_edit("x", Meta { name: "mine".into(), tags: vec!["a".into()] }, 100);
    let (n, req) = e.poll(100).remove(0);
    assert!(matches!(req, Request::Patch { if_match: 1, .. }));
    // Another device edited later (LWW alone would take theirs).
    let theirs = RemoteAsset {
        id: "x".into(),
        sha256: "sha-x".into(),
        meta: Meta { name: "theirs".into(), tags: vec!["b".into()] },
        version: 2,
        updated_at: 200,
        updated_by: None,
    };
    e.handle(
        n,
        Outcome::Failed { status: 412, code: "PRECONDITION_FAILED".into(), current: Some(theirs), retry_after: None },
        100,
    );
    assert!(e.take_events().contains(&Event::Conflict { id: "x".into(), local_won: true }));
    let (_, again) = e.poll(100).remove(0);
    let merged = Meta { name: "mine".into(), tags: vec!["a".into(), "b".into()] };
    assert_eq!(again, Request::Patch { id: "x".into(), if_match: 2, meta: merged });
}

/// Each byte check, run against a client broken on purpose, fails: they are known to bite.
#[test]
fn broken_clients_are_caught() {
    for (bug, expect) in [
        (Bug::ResendAfterPersistedConfirmation, "again after persisting their confirmation"),
        (Bug::RetryWithoutFault, "faults to excuse re-sending"),
    ] {
        let failures = run_seeds(50, bug);
        assert!(failures.len() >= 25, "{bug:?} slipped through {} of 50 runs", 50 - failures.len());
        assert!(
            failures.iter().any(|f| f.contains(expect)),
            "{bug:?} was not caught by its check: {:?}",
            &failures[..3.min(failures.len())]
        );
    }
}

#[test]
fn a_refused_cursor_restarts_the_pull_from_the_beginning() {
    let state = SyncState { cursor: Some("issued-by-an-older-server".into()), ..SyncState::default() };
    let mut e = Engine::new(state, Config::default(), 1);
    e.request_pull();
    let (n, req) = e.poll(0).remove(0);
    assert_eq!(req, Request::Changes { cursor: Some("issued-by-an-older-server".into()) });
    let refused = Outcome::Failed { status: 400, code: "INVALID_CURSOR".into(), current: None, retry_after: None };
    e.handle(n, refused.clone(), 0);
    let (n, req) = e.poll(0).remove(0);
    assert_eq!(req, Request::Changes { cursor: None }, "paged again from the start");
    // Refused without a cursor too: no tight loop, it backs off.
    e.handle(n, refused, 0);
    assert!(e.poll(0).is_empty(), "backing off");
}
