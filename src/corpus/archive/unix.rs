//! Containers read front to back: lone compression streams, tar, ar (a
//! `.deb`) and RPM (a cpio payload).

use super::{detect, inner_name, is_tar, read_capped, why_of, Counting, Entry, Format, Walk, Why};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::rc::Rc;

/// A tar's hard links to regular members: target name -> the links' paths.
type Links = HashMap<Vec<u8>, Vec<Vec<Vec<u8>>>>;

impl Walk<'_, '_> {
    /// A lone compression stream: a tar inside is read as the tar (the
    /// stream is only a layer); anything else is one member, named after
    /// the stream without its compression suffix.
    pub(super) fn stream(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32, f: Format) {
        let taken = Rc::new(Cell::new(0));
        let input = Counting {
            inner: data,
            n: taken.clone(),
        };
        let dec = match self.decoder(f, input) {
            Ok(d) => d,
            Err(e) => return self.failed(path, &e),
        };
        let mut guarded = self.guard(dec, Some(taken));
        // Enough to tell a tar from anything else.
        let mut head = Vec::new();
        if let Err(e) = (&mut guarded).take(512).read_to_end(&mut head) {
            let (why, detail) = why_of(&e);
            return self.unscanned(path, why, detail);
        }
        if is_tar(&head) {
            let chained = io::Cursor::new(head).chain(guarded);
            let links = self.tar_from(chained, path, depth);
            if !links.is_empty() {
                // The hard links' targets, decoded again from the start.
                let taken = Rc::new(Cell::new(0));
                let input = Counting {
                    inner: data,
                    n: taken.clone(),
                };
                match self.decoder(f, input) {
                    Ok(dec) => {
                        let again = self.guard(dec, Some(taken));
                        self.tar_links(again, path, depth, links);
                    }
                    Err(e) => self.failed(path, &e),
                }
            }
            return;
        }
        let rest = read_capped(
            &mut guarded,
            self.caps.member_bytes.saturating_sub(head.len() as u64),
        );
        drop(guarded);
        match rest {
            Ok(mut more) => {
                head.append(&mut more);
                let inner = inner_name(path.last().map(Vec::as_slice).unwrap_or(b""), f);
                path.push(inner);
                self.member(&head, path, depth);
                path.pop();
            }
            Err(e) => self.failed(path, &e),
        }
    }

    pub(super) fn tar(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let r = self.guard(data, None);
        let links = self.tar_from(r, path, depth);
        if !links.is_empty() {
            let again = self.guard(data, None);
            self.tar_links(again, path, depth, links);
        }
    }

    /// The members of a tar read from `r` (sequentially: a tar inside a
    /// stream is never held whole). Returns the hard links to regular
    /// members read before them, by target: they are members with their
    /// target's bytes (see `tar_links`).
    pub(super) fn tar_from<R: Read>(&mut self, r: R, path: &mut Vec<Vec<u8>>, depth: u32) -> Links {
        let mut links = Links::new();
        let mut regular: HashSet<Vec<u8>> = HashSet::new();
        let mut archive = tar::Archive::new(r);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => {
                self.failed(path, &e);
                return links;
            }
        };
        let mut count = 0u64;
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    self.failed(path, &e);
                    return links;
                }
            };
            count += 1;
            if self.over_members(path, count) {
                return links;
            }
            let name = entry.path_bytes().into_owned();
            path.push(name.clone());
            let kind = entry.header().entry_type();
            if kind.is_file() || kind == tar::EntryType::Continuous {
                match read_capped(&mut entry, self.caps.member_bytes) {
                    Ok(data) => {
                        regular.insert(name);
                        self.member(&data, path, depth);
                    }
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        let stop = why != Why::MemberSize;
                        self.unscanned(path, why, detail);
                        if stop {
                            path.pop();
                            return links;
                        }
                    }
                }
            } else if let Some(target) = entry
                .link_name_bytes()
                .filter(|t| kind == tar::EntryType::Link && regular.contains(t.as_ref()))
            {
                links
                    .entry(target.into_owned())
                    .or_default()
                    .push(path.clone());
            } else {
                let target = entry
                    .link_name_bytes()
                    .map(|t| String::from_utf8_lossy(&t).into_owned());
                let what = match (kind, target) {
                    (tar::EntryType::Link, Some(t)) => format!("hard link to {t}"),
                    (tar::EntryType::Symlink, Some(t)) => format!("symbolic link to {t}"),
                    (tar::EntryType::Directory, _) => "directory".to_string(),
                    (k, _) => format!("{k:?}").to_lowercase(),
                };
                self.emit(Entry::Listed { path, what });
            }
            path.pop();
        }
        links
    }

    /// The hard links of a tar (`links`, from `tar_from`), read again from
    /// `r`: each is a member with its target's bytes.
    fn tar_links<R: Read>(&mut self, r: R, path: &[Vec<u8>], depth: u32, mut links: Links) {
        let mut archive = tar::Archive::new(r);
        let entries = match archive.entries() {
            Ok(e) => e,
            Err(e) => return self.failed(path, &e),
        };
        for entry in entries {
            let Ok(mut entry) = entry else {
                // Read once already: what fails now failed then.
                return;
            };
            let kind = entry.header().entry_type();
            if !(kind.is_file() || kind == tar::EntryType::Continuous) {
                continue;
            }
            let Some(names) = links.remove(entry.path_bytes().as_ref()) else {
                continue;
            };
            let data = match read_capped(&mut entry, self.caps.member_bytes) {
                Ok(d) => d,
                Err(e) => {
                    for link in names {
                        self.failed(&link, &e);
                    }
                    continue;
                }
            };
            for mut link in names {
                self.member(&data, &mut link, depth);
            }
            if links.is_empty() {
                return;
            }
        }
    }

    /// An ar archive. A `.deb` (its first member `debian-binary`): the
    /// control and data tars are layers, their members are the entries.
    pub(super) fn ar(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut a = ar::Archive::new(data);
        let mut count = 0u64;
        let mut deb = false;
        while let Some(entry) = a.next_entry() {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
            };
            count += 1;
            if self.over_members(path, count) {
                return;
            }
            let name = entry.header().identifier().to_vec();
            if count == 1 && name == b"debian-binary" {
                deb = true;
            }
            let layer = deb && (name.starts_with(b"control.tar") || name.starts_with(b"data.tar"));
            let mut g = self.guard(&mut entry, None);
            let read = read_capped(&mut g, self.caps.member_bytes);
            drop(g);
            path.push(name);
            match read {
                Ok(body) => match detect(&body) {
                    Some(f) if layer && (f.is_stream() || f == Format::Tar) => {
                        path.pop();
                        self.container(&body, path, depth, f);
                        continue;
                    }
                    _ => self.member(&body, path, depth),
                },
                Err(e) => self.failed(path, &e),
            }
            path.pop();
        }
    }

    /// An RPM: its headers say where the payload starts; the payload is a
    /// cpio archive, compressed or not (told by content), whose regular
    /// files are the members (a hard link's other names carry no data and
    /// are listed).
    pub(super) fn rpm(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let mut cur = io::Cursor::new(data);
        if let Err(e) = rpm::PackageMetadata::parse(&mut cur) {
            return self.unscanned(path, Why::Corrupt, format!("RPM headers: {e}"));
        }
        let payload = &data[(cur.position() as usize).min(data.len())..];
        let taken = Rc::new(Cell::new(0));
        let input = Counting {
            inner: payload,
            n: taken.clone(),
        };
        let dec: Box<dyn Read + '_> = match detect(payload) {
            Some(f) if f.is_stream() => match self.decoder(f, input) {
                Ok(d) => d,
                Err(e) => return self.failed(path, &e),
            },
            _ if payload.starts_with(b"07070") => Box::new(input),
            _ => {
                return self.unscanned(
                    path,
                    Why::Unsupported,
                    "an RPM payload that is neither cpio nor a known compression of it".into(),
                )
            }
        };
        let mut r: Box<dyn Read + '_> = Box::new(self.guard(dec, Some(taken)));
        let mut count = 0u64;
        loop {
            let entry = match cpio::newc::Reader::new(r) {
                Ok(e) => e,
                Err(e) => return self.failed(path, &e),
            };
            if entry.entry().is_trailer() {
                return;
            }
            count += 1;
            if self.over_members(path, count) {
                return;
            }
            let (name, mode, size, nlink) = {
                let e = entry.entry();
                (
                    e.name().as_bytes().to_vec(),
                    e.mode(),
                    e.file_size(),
                    e.nlink(),
                )
            };
            path.push(name);
            let mut entry = entry;
            if mode & 0o170000 == 0o100000 && !(size == 0 && nlink > 1) {
                match read_capped(&mut entry, self.caps.member_bytes) {
                    Ok(body) => self.member(&body, path, depth),
                    Err(e) => {
                        let (why, detail) = why_of(&e);
                        self.unscanned(path, why, detail);
                        path.pop();
                        if why != Why::MemberSize {
                            return;
                        }
                        // The rest of an oversized member is read past
                        // (still under the total, ratio and time caps).
                        match entry.finish() {
                            Ok(next) => {
                                r = next;
                                continue;
                            }
                            Err(e) => return self.failed(path, &e),
                        }
                    }
                }
            } else {
                let what = match mode & 0o170000 {
                    0o040000 => "directory".to_string(),
                    0o120000 => "symbolic link".to_string(),
                    0o100000 => "hard link (its data is under another name)".to_string(),
                    m => format!("special file (mode {m:o})"),
                };
                self.emit(Entry::Listed { path, what });
            }
            path.pop();
            r = match entry.finish() {
                Ok(next) => next,
                Err(e) => return self.failed(path, &e),
            };
        }
    }
}
