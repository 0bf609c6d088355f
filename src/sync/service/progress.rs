//! The `progress` event: asset counts by status, and bytes moved, overall and per transfer.
//! Byte counts only grow (a transfer that restarts keeps its high-water mark until it passes
//! it) and events are throttled while bytes move; a change the throttle held back is
//! reported when the throttle's window ends, so a transfer that stalls (or pauses) shows the
//! bytes it really moved, not those of the last event before the stall.

use std::collections::BTreeMap;

use serde::Serialize;

use super::*;
use crate::sync::engine::Outcome;

/// Which way bytes move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Direction {
    Upload,
    Download,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Transfer {
    id: String,
    direction: Direction,
    loaded: f64,
    total: f64,
}

/// At most one byte-progress event per this many ms (a transfer's end is always reported).
const THROTTLE_MS: f64 = 200.0;

#[derive(Default)]
pub(super) struct Transfers {
    active: BTreeMap<String, Transfer>,
    /// Bytes of transfers that ended, for the overall totals.
    ended_loaded: f64,
    ended_total: f64,
    /// The status counts of the last report.
    counts: serde_json::Map<String, serde_json::Value>,
    last_emit: f64,
    /// A report the throttle held back is due at the end of its window.
    trailing: bool,
}

impl Transfers {
    fn detail(&self) -> serde_json::Value {
        let loaded: f64 = self.ended_loaded + self.active.values().map(|t| t.loaded).sum::<f64>();
        let total: f64 = self.ended_total + self.active.values().map(|t| t.total).sum::<f64>();
        let mut d = self.counts.clone();
        d.insert("bytesLoaded".into(), loaded.into());
        d.insert("bytesTotal".into(), total.into());
        let list: Vec<&Transfer> = self.active.values().collect();
        d.insert("transfers".into(), serde_json::to_value(list).unwrap_or_default());
        serde_json::Value::Object(d)
    }
}

impl Service {
    /// Reports `loaded` of `total` bytes of `id` moved (never less than reported before).
    pub(super) fn transfer_progress(self: &Rc<Self>, id: &str, direction: Direction, loaded: f64, total: f64) {
        self.transfer_moved(id, direction, loaded, total, false);
    }

    /// `transfer_progress` for a chunk the server confirmed: always reported (a chunk is at
    /// least megabytes, so these come a few per second at most; the throttle is for streams).
    pub(super) fn chunk_confirmed(self: &Rc<Self>, id: &str, loaded: f64, total: f64) {
        self.transfer_moved(id, Direction::Upload, loaded, total, true);
    }

    fn transfer_moved(self: &Rc<Self>, id: &str, direction: Direction, loaded: f64, total: f64, always: bool) {
        let (due, hold_ms) = {
            let mut t = self.transfers.borrow_mut();
            let entry =
                t.active.entry(id.to_owned()).or_insert(Transfer { id: id.to_owned(), direction, loaded: 0.0, total });
            entry.direction = direction;
            entry.total = total;
            entry.loaded = entry.loaded.max(loaded.min(total));
            let now = platform::now_ms();
            let due = always || loaded >= total || now - t.last_emit >= THROTTLE_MS;
            if due {
                t.last_emit = now;
                t.trailing = false;
                (true, None)
            } else if t.trailing {
                (false, None)
            } else {
                t.trailing = true;
                (false, Some(THROTTLE_MS - (now - t.last_emit)))
            }
        };
        if due {
            self.emit_progress();
        }
        if let Some(ms) = hold_ms {
            let me = Rc::downgrade(self);
            spawn_local(async move {
                platform::sleep(ms.max(0.0)).await;
                let Some(svc) = me.upgrade() else { return };
                let fire = {
                    let mut t = svc.transfers.borrow_mut();
                    let fire = t.trailing && !svc.disposed.get();
                    if fire {
                        t.trailing = false;
                        t.last_emit = platform::now_ms();
                    }
                    fire
                };
                if fire {
                    svc.emit_progress();
                }
            });
        }
    }

    /// A transfer is over: its bytes move to the overall totals. One that will be retried
    /// (`outcome` a network error, 401, 408, 429 or 5xx) stays listed, so its bytes are not
    /// counted twice when it resumes.
    pub(super) fn transfer_ended(&self, id: &str, outcome: &Outcome) {
        let retried = match outcome {
            Outcome::Network => true,
            Outcome::Failed { status, .. } => matches!(status, 401 | 408 | 429) || *status >= 500,
            Outcome::Ok(_) => false,
        };
        let mut t = self.transfers.borrow_mut();
        if retried {
            return;
        }
        if let Some(done) = t.active.remove(id) {
            t.ended_loaded += done.total;
            t.ended_total += done.total;
        }
    }

    /// Reports the asset counts by status (with the byte totals), when they changed: the loop
    /// calls this on every turn, and most turns change nothing.
    pub(super) fn report_counts(&self, counts: serde_json::Value) {
        if let serde_json::Value::Object(c) = counts {
            let mut t = self.transfers.borrow_mut();
            if t.counts == c {
                return;
            }
            t.counts = c;
        }
        self.emit_progress();
    }

    fn emit_progress(&self) {
        let detail = self.transfers.borrow().detail();
        self.emit("progress", &json_to_js(&detail));
    }
}
