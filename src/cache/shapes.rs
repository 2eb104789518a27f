//! What the results cache keeps of archives: each archive content's shape
//! (see `corpus::members::Shape`), by its sha256, the fpgate version and
//! the caps, so an unchanged archive whose members are all known is
//! answered without being read or decoded.

use super::CacheRun;
use crate::corpus::members::{Archives, Shape};
use crate::corpus::read::PreHashed;
use crate::store;

/// Where archive shapes are kept: by fpgate version and caps.
fn shapes_domain(archives: &Archives) -> String {
    format!(
        "members/{}/{}",
        env!("CARGO_PKG_VERSION"),
        archives.fingerprint()
    )
}

impl CacheRun<'_> {
    /// Load the shapes the store keeps of the archives among `pre` (files
    /// known to be archives), for a run that reads members as `archives`
    /// says. Call before `prepare_deltas`.
    pub fn load_members(
        &mut self,
        dir: &std::path::Path,
        archives: &std::sync::Arc<Archives>,
        pre: &[Option<Box<PreHashed>>],
    ) {
        if !archives.enabled {
            return;
        }
        self.archives = Some(archives.clone());
        let mut shas: Vec<[u8; 32]> = pre
            .iter()
            .flatten()
            .filter(|p| p.container == Some(true))
            .map(|p| p.sha256)
            .collect();
        shas.sort_unstable();
        shas.dedup();
        let domain = shapes_domain(archives);
        for (sha, value) in shas.iter().zip(store::small_get(dir, &domain, &shas)) {
            // A value that does not parse is a miss: the archive is read.
            if let Some(shape) = value.and_then(|v| serde_json::from_slice::<Vec<Shape>>(&v).ok()) {
                self.shapes.insert(*sha, std::sync::Arc::new(shape));
            }
        }
    }

    /// Keep the shapes of the archives this run read.
    pub fn save_members(&self, dir: &std::path::Path) {
        let Some(archives) = &self.archives else {
            return;
        };
        let rows = std::mem::take(&mut *self.new_shapes.lock().unwrap_or_else(|e| e.into_inner()));
        store::small_put(dir, &shapes_domain(archives), &rows);
    }

    /// Remember the shape of an archive this run read (unless known).
    pub(super) fn record_members(&self, sha256: &[u8; 32], shape: &[Shape]) {
        if self.archives.is_none() || self.shapes.contains_key(sha256) {
            return;
        }
        if let Ok(v) = serde_json::to_vec(shape) {
            self.new_shapes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((*sha256, v));
        }
    }
}
