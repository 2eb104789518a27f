//! The corpus store: the recipe's artifacts, content-addressed
//! (`DIR/sha256/<pin>`), so that nothing but a file whose sha256 is its
//! name is ever used. A download lands in `DIR/tmp/` and is moved into
//! place only after it was hashed and matched its pin (`put`); a store
//! file is verified again on use (`verified`): by its hash, or by a stamp of
//! its inode, size, mtime and ctime written when it was last verified (a
//! write to the file changes its ctime, which no one can set back).
//! `fetch` takes `DIR/.lock` (flock) while it writes, so two fetches into
//! one store wait for each other; runs only read.

use crate::error::{Error, Result};
use crate::util::hex::hex;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The store's default directory inside the results cache's directory.
pub const DEFAULT_SUBDIR: &str = "corpus-store";

#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

/// An exclusive hold on a store (see `Store::lock`), released on drop.
pub struct Held {
    _file: File,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the content `pin` lives (whether it is there or not).
    pub fn object(&self, pin: &str) -> PathBuf {
        self.dir.join("sha256").join(pin)
    }

    fn stamp_path(&self, pin: &str) -> PathBuf {
        self.dir.join("sha256").join(format!("{pin}.verified"))
    }

    /// The directory downloads are written to before they are verified
    /// (on the store's file system, so the move into place is atomic).
    pub fn temp_dir(&self) -> Result<PathBuf> {
        let t = self.dir.join("tmp");
        for d in [&t, &self.dir.join("sha256")] {
            std::fs::create_dir_all(d).map_err(|e| {
                Error::io(
                    d.display(),
                    format!("cannot create the corpus store {}: {e}", d.display()),
                )
            })?;
        }
        Ok(t)
    }

    /// Hold the store for writing: waits for another fetch into it.
    pub fn lock(&self) -> Result<Held> {
        self.temp_dir()?;
        let p = self.dir.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(p.display(), format!("{}: {e}", p.display())))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a descriptor this function owns.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            return Err(Error::io(
                p.display(),
                format!("cannot lock the corpus store {}: {e}", p.display()),
            ));
        }
        Ok(Held { _file: file })
    }

    /// The content `pin`, verified: `Ok(None)` when the store lacks it, the
    /// path when its bytes hash to `pin`, an error naming it when they do
    /// not (a damaged store is never used: remove the file, or fetch again,
    /// which replaces it).
    pub fn verified(&self, pin: &str) -> Result<Option<PathBuf>> {
        let path = self.object(pin);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.damaged(&path, &format!("cannot be read: {e}"))),
        };
        if !meta.file_type().is_file() {
            return Err(self.damaged(&path, "is not a regular file"));
        }
        if std::fs::read_to_string(self.stamp_path(pin))
            .ok()
            .as_deref()
            == Some(&stamp(&meta))
        {
            return Ok(Some(path));
        }
        let (got, _) = hash_file(&path, false)
            .map_err(|e| self.damaged(&path, &format!("cannot be read: {e}")))?;
        if got != pin {
            return Err(self.damaged(
                &path,
                &format!("does not match its name: its sha256 is {got}"),
            ));
        }
        // Best effort: a store that cannot be written is verified by hash
        // every time.
        let _ = write_atomically(&self.stamp_path(pin), stamp(&meta).as_bytes());
        Ok(Some(path))
    }

    /// The store's damaged or foreign file, as an error.
    fn damaged(&self, path: &Path, what: &str) -> Error {
        Error::corpus(
            Some(&path.display().to_string()),
            format!(
                "corpus store file {} {what}; it is not used: delete it and run `fpgate corpus fetch`",
                path.display()
            ),
        )
    }

    /// Move a verified download into place (`tmp` hashed to `pin`): synced
    /// first, then renamed (atomic), then stamped.
    pub fn put(&self, tmp: &Path, pin: &str) -> Result<PathBuf> {
        let dest = self.object(pin);
        let io = |e: std::io::Error| {
            Error::io(
                dest.display(),
                format!(
                    "cannot move a download into the corpus store {}: {e}",
                    dest.display()
                ),
            )
        };
        File::open(tmp).and_then(|f| f.sync_all()).map_err(io)?;
        // Read-only: the store's files are never written in place.
        let mut perm = std::fs::metadata(tmp).map_err(io)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o444);
        std::fs::set_permissions(tmp, perm).map_err(io)?;
        std::fs::rename(tmp, &dest).map_err(io)?;
        if let Some(dir) = dest.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        let meta = std::fs::symlink_metadata(&dest).map_err(io)?;
        let _ = write_atomically(&self.stamp_path(pin), stamp(&meta).as_bytes());
        Ok(dest)
    }

    /// Every content in the store: (pin, size), sorted.
    pub fn objects(&self) -> Result<Vec<(String, u64)>> {
        let dir = self.dir.join("sha256");
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(Error::io(
                    dir.display(),
                    format!("cannot list the corpus store {}: {e}", dir.display()),
                ))
            }
        };
        let mut out = Vec::new();
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if crate::util::hex::is_sha256(&name) {
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((name, size));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Remove a content (and its stamp).
    pub fn remove(&self, pin: &str) -> Result<()> {
        let p = self.object(pin);
        let _ = std::fs::remove_file(self.stamp_path(pin));
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(
                p.display(),
                format!("cannot remove {}: {e}", p.display()),
            )),
        }
    }

    /// Remove what an interrupted fetch left in `tmp/` (call while holding
    /// the lock: no other fetch is writing there).
    pub fn clear_temp(&self) -> Result<usize> {
        let t = self.temp_dir()?;
        let mut n = 0;
        for e in std::fs::read_dir(&t).into_iter().flatten().flatten() {
            let p = e.path();
            let gone = match e.file_type() {
                Ok(ft) if ft.is_dir() => std::fs::remove_dir_all(&p).is_ok(),
                _ => std::fs::remove_file(&p).is_ok(),
            };
            n += usize::from(gone);
        }
        Ok(n)
    }
}

/// What a verified store file looked like: inode, size, mtime, ctime.
fn stamp(m: &std::fs::Metadata) -> String {
    format!(
        "{} {} {} {}.{} {}.{}\n",
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    )
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(path).map(|_| ()).map_err(|e| e.error)
}

/// Open a file to read it: non-blocking (a FIFO cannot hang the reader),
/// regular files only; links are followed only when `follow`.
pub fn open_regular(path: &Path, follow: bool) -> std::io::Result<File> {
    let mut flags = libc::O_NONBLOCK;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = File::options().read(true).custom_flags(flags).open(path)?;
    if !f.metadata()?.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// A file's sha256 (lowercase hex) and size, read in 1 MiB pieces.
pub fn hash_file(path: &Path, follow: bool) -> std::io::Result<(String, u64)> {
    let mut f = open_regular(path, follow)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((hex(&h.finalize()), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_verified_content_is_used() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::new(d.path().join("store"));
        let data = b"clean bytes";
        let pin = hex(&Sha256::digest(data));
        assert!(s.verified(&pin).unwrap().is_none());
        let tmp = s.temp_dir().unwrap().join("x.part");
        std::fs::write(&tmp, data).unwrap();
        let p = s.put(&tmp, &pin).unwrap();
        assert_eq!(s.verified(&pin).unwrap(), Some(p.clone()));
        assert_eq!(s.objects().unwrap(), vec![(pin.clone(), data.len() as u64)]);
        // Damaged in place (same size): its ctime moved, so it is hashed
        // again, and refused.
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o644);
        std::fs::set_permissions(&p, perm).unwrap();
        std::fs::write(&p, b"dirty bytes").unwrap();
        let e = s.verified(&pin).unwrap_err().to_string();
        assert!(e.contains("does not match its name"), "{e}");
        // A link in the store is not followed.
        s.remove(&pin).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", s.object(&pin)).unwrap();
        let e = s.verified(&pin).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        // Leftovers of an interrupted fetch are cleared.
        std::fs::write(s.temp_dir().unwrap().join("y.part"), b"half").unwrap();
        let _held = s.lock().unwrap();
        assert_eq!(s.clear_temp().unwrap(), 1);
    }
}
