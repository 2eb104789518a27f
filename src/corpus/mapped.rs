//! A corpus file mapped into memory instead of copied into a buffer, made
//! safe against the file shrinking while it is mapped.
//!
//! Reading a mapped page past a file's end (someone truncated the file
//! after it was mapped) raises SIGBUS, which would kill the whole run. A
//! handler installed once catches a SIGBUS whose address lies in one of our
//! live mappings, puts zero pages over that mapping (so the faulting read
//! completes, reading zeros) and marks it faulted; the worker then reports
//! the file as changed instead of using what it read. Any other SIGBUS goes
//! to the handler that was there before (the engine's, or the default).
//!
//! The scan of a mapped file sees the file as it is, not a private copy, so
//! its user checks the file after it has used the data, not after mapping
//! it (see `Mapped::unchanged`).

use crate::corpus::read::{io_failure, Stamp};
use crate::corpus::Reason;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Files smaller than this are read into the worker's buffer: a copy costs
/// less than a mapping for them.
pub const MAP_FROM: u64 = 64 << 10;

/// Live mappings, one slot each: the handler looks an address up here.
/// More mappings at once than slots (more threads than this) are read.
const SLOTS: usize = 256;

struct Slot {
    /// Start of the mapping (0: the slot is free).
    base: AtomicUsize,
    len: AtomicUsize,
    faulted: AtomicBool,
}

static LIVE: [Slot; SLOTS] = [const {
    Slot {
        base: AtomicUsize::new(0),
        len: AtomicUsize::new(0),
        faulted: AtomicBool::new(false),
    }
}; SLOTS];

/// The SIGBUS disposition before ours, to pass on what is not ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();

/// A file mapped read-only, and guarded (see the module's text).
pub struct Mapped {
    map: memmap2::Mmap,
    slot: usize,
    file: File,
    /// The file when it was mapped.
    stamp: Stamp,
}

impl Mapped {
    /// Map `file` (`before`: its metadata when opened), or give it back
    /// when it cannot be mapped (the caller reads it instead): empty,
    /// mapping refused by the file system, no free slot, or the guard not
    /// installed.
    pub fn new(file: File, before: &std::fs::Metadata) -> Result<Mapped, File> {
        let Some(len) = usize::try_from(before.len()).ok().filter(|&l| l > 0) else {
            return Err(file);
        };
        if !guard_installed() {
            return Err(file);
        }
        let Some(slot) = LIVE.iter().position(|s| {
            s.base
                .compare_exchange(0, usize::MAX, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        }) else {
            return Err(file);
        };
        // SAFETY: the mapping is read-only and private; what another process
        // does to the file meanwhile is what the handler (truncation) and the
        // check after use (`unchanged`) are for.
        let map = unsafe { memmap2::MmapOptions::new().len(len).populate().map(&file) };
        let s = &LIVE[slot];
        let Ok(map) = map else {
            s.base.store(0, Ordering::Release);
            return Err(file);
        };
        s.faulted.store(false, Ordering::Relaxed);
        s.len.store(len, Ordering::Release);
        s.base.store(map.as_ptr() as usize, Ordering::Release);
        Ok(Mapped {
            map,
            slot,
            file,
            stamp: Stamp::of(before),
        })
    }

    pub fn data(&self) -> &[u8] {
        &self.map
    }

    /// The file when it was mapped.
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// Whether the file shrank under the mapping while it was read (what was
    /// read past its new end was zeros, not the file).
    pub fn faulted(&self) -> bool {
        LIVE[self.slot].faulted.load(Ordering::Acquire)
    }

    /// Called once the data has been used: the file must be as it was when
    /// it was mapped (size, times, inode), and no page of it may have failed
    /// to read, or what was read of it stands for nothing.
    pub fn unchanged(&self) -> Result<(), (Reason, String)> {
        let now = self.file.metadata().map_err(io_failure)?;
        let stamp_now = Stamp::of(&now);
        if self.faulted() && stamp_now == self.stamp {
            // SIGBUS on a file that did not change: the storage failed to
            // deliver a page (an I/O error), not a writer.
            return Err((
                Reason::Unreadable,
                "a page of the mapped file could not be read (I/O error)".into(),
            ));
        }
        if self.faulted() || stamp_now != self.stamp {
            let cut = if self.faulted() {
                ", cut short under the scan"
            } else {
                ""
            };
            return Err((
                Reason::Changed,
                format!(
                    "changed while being scanned (size {} -> {}{cut})",
                    self.stamp.size,
                    now.len()
                ),
            ));
        }
        Ok(())
    }
}

impl Drop for Mapped {
    fn drop(&mut self) {
        // Freed before the unmapping (the map field drops after this): no
        // access to the mapping can happen in between.
        LIVE[self.slot].base.store(0, Ordering::Release);
    }
}

/// Install the SIGBUS handler, once; `false` if that failed (then nothing
/// is mapped).
fn guard_installed() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        // SAFETY: plain sigaction calls; the handler only reads atomics, and
        // calls mmap (a system call) and the previous handler.
        unsafe {
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, std::ptr::null(), &mut previous) != 0 {
                return false;
            }
            if PREVIOUS.set(previous).is_err() {
                return false;
            }
            let mut ours: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            ours.sa_sigaction = handler as usize;
            ours.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut ours.sa_mask);
            libc::sigaction(libc::SIGBUS, &ours, std::ptr::null_mut()) == 0
        }
    })
}

extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler.
    let addr = unsafe { (*info).si_addr() } as usize;
    for s in &LIVE {
        let base = s.base.load(Ordering::Acquire);
        if base == 0 || base == usize::MAX {
            continue;
        }
        let len = s.len.load(Ordering::Acquire);
        if addr < base || addr >= base + len {
            continue;
        }
        // SAFETY: [base, base + len) is our own live mapping; zero pages put
        // over it with MAP_FIXED keep every address in it readable.
        let zeros = unsafe {
            libc::mmap(
                base as *mut libc::c_void,
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                -1,
                0,
            )
        };
        if zeros != libc::MAP_FAILED {
            s.faulted.store(true, Ordering::Release);
            return;
        }
        break;
    }
    pass_on(sig, info, context);
}

/// Hand a SIGBUS that is not ours to the disposition before ours; with none
/// (or "ignore", which cannot apply to a fault), restore the default, so the
/// faulting access, when retried, ends the process as it would have.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(prev) = PREVIOUS.get() else {
        return default(sig);
    };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        return default(sig);
    }
    // SAFETY: `handler` was installed as a handler of this signal with these
    // flags, so it has the matching signature.
    unsafe {
        if prev.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                std::mem::transmute(handler);
            f(sig, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(sig);
        }
    }
}

fn default(sig: libc::c_int) {
    // SAFETY: resetting a signal's disposition to the default.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_file_truncated_while_mapped_reads_as_zeros_and_is_marked() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        let len = 5 * 4096 + 100;
        t.write_all(&vec![7u8; len]).unwrap();
        t.flush().unwrap();
        let m = map(t.path());
        assert!(!m.faulted());
        assert!(m.unchanged().is_ok());
        assert_eq!(m.data()[len - 1], 7);
        // Another writer shrinks the file: the pages past the new end are
        // gone, and reading them would raise SIGBUS.
        t.as_file().set_len(100).unwrap();
        let tail = std::hint::black_box(m.data())[len - 1];
        assert_eq!(tail, 0);
        assert!(m.faulted());
        let (reason, detail) = m.unchanged().unwrap_err();
        assert_eq!(reason, Reason::Changed);
        assert!(detail.contains("cut short"), "{detail}");
        drop(m);
        // The slot is free again and a new mapping starts unfaulted.
        std::fs::write(t.path(), vec![1u8; len]).unwrap();
        let m = map(t.path());
        assert!(!m.faulted());
        assert!(m.data().iter().all(|&b| b == 1));
    }

    fn map(path: &std::path::Path) -> Mapped {
        let file = File::open(path).unwrap();
        let before = file.metadata().unwrap();
        Mapped::new(file, &before).expect("maps")
    }

    #[test]
    fn a_fault_on_an_unchanged_file_is_a_read_error() {
        let mut t = tempfile::NamedTempFile::new().unwrap();
        t.write_all(&[5u8; 3 * 4096]).unwrap();
        t.flush().unwrap();
        let m = map(t.path());
        // What the handler does on a SIGBUS that no writer caused (a disk
        // that fails to deliver a page): the file's stamp stays the same.
        LIVE[m.slot].faulted.store(true, Ordering::Release);
        let (reason, detail) = m.unchanged().unwrap_err();
        assert_eq!(reason, Reason::Unreadable, "{detail}");
    }

    #[test]
    fn an_empty_file_is_not_mapped() {
        let t = tempfile::NamedTempFile::new().unwrap();
        let file = File::open(t.path()).unwrap();
        let before = file.metadata().unwrap();
        assert!(Mapped::new(file, &before).is_err());
    }
}
