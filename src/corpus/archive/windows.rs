//! Windows installers: CAB, and MSI (its embedded CABs named from its File
//! table, its other streams).

use super::{detect, read_capped, Format, Walk, Why};
use std::io;

impl Walk<'_, '_> {
    /// An MSI (a compound file with MSI tables; any other compound file is
    /// no container): every stream that is not a table is read; an
    /// embedded CAB is opened with its members named from the File table
    /// (`FileName`'s long name), other streams (Binary-table DLLs such as
    /// custom actions, an icon) are members under their stream names.
    pub(super) fn msi(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        let Ok(mut pkg) = msi::Package::open(io::Cursor::new(data)) else {
            return;
        };
        let mut names = std::collections::HashMap::new();
        if pkg.has_table("File") {
            if let Ok(rows) = pkg.select_rows(msi::Select::table("File")) {
                for row in rows {
                    if let (Some(key), Some(name)) =
                        (row["File"].as_str(), row["FileName"].as_str())
                    {
                        let long = name.rsplit('|').next().unwrap_or(name);
                        names.insert(key.to_string(), long.to_string());
                    }
                }
            }
        }
        let mut streams: Vec<String> = pkg.streams().collect();
        streams.sort();
        if self.over_members(path, streams.len() as u64) {
            return;
        }
        for s in streams {
            let read = match pkg.read_stream(&s) {
                Ok(r) => {
                    let mut g = self.guard(r, None);
                    read_capped(&mut g, self.caps.member_bytes)
                }
                Err(e) => Err(e),
            };
            path.push(s.as_bytes().to_vec());
            match read {
                Ok(body) if detect(&body) == Some(Format::Cab) => {
                    // The CAB is a layer: its files are the members.
                    path.pop();
                    self.cab_named(&body, path, depth, Some(&names));
                    continue;
                }
                Ok(body) => self.member(&body, path, depth),
                Err(e) => self.failed(path, &e),
            }
            path.pop();
        }
    }

    /// A CAB: each folder's files, each decoded from its folder.
    pub(super) fn cab(&mut self, data: &[u8], path: &mut Vec<Vec<u8>>, depth: u32) {
        self.cab_named(data, path, depth, None);
    }

    /// A CAB whose member names may be keys of a table (an MSI's File
    /// table): `names` maps them to the names shown.
    pub(super) fn cab_named(
        &mut self,
        data: &[u8],
        path: &mut Vec<Vec<u8>>,
        depth: u32,
        names: Option<&std::collections::HashMap<String, String>>,
    ) {
        let mut c = match cab::Cabinet::new(io::Cursor::new(data)) {
            Ok(c) => c,
            Err(e) => return self.unscanned(path, Why::Corrupt, e.to_string()),
        };
        let map = names;
        let mut entries = Vec::new();
        for folder in c.folder_entries() {
            let unsupported = match folder.compression_type() {
                cab::CompressionType::Quantum(..) => Some("Quantum compression"),
                _ => None,
            };
            for f in folder.file_entries() {
                entries.push((f.name().to_string(), unsupported));
            }
        }
        if self.over_members(path, entries.len() as u64) {
            return;
        }
        for (name, unsupported) in entries {
            let shown = map.and_then(|m| m.get(&name)).unwrap_or(&name);
            path.push(shown.as_bytes().to_vec());
            if let Some(what) = unsupported {
                self.unscanned(path, Why::Unsupported, format!("{what} is not read"));
            } else {
                let read = match c.read_file(&name) {
                    Ok(r) => {
                        let mut g = self.guard(r, None);
                        read_capped(&mut g, self.caps.member_bytes)
                    }
                    Err(e) => Err(e),
                };
                match read {
                    Ok(body) => self.member(&body, path, depth),
                    Err(e) => self.failed(path, &e),
                }
            }
            path.pop();
        }
    }
}
