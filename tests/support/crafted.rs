//! Hand-made tar + gzip archives, including ones no honest tool writes: absolute paths, `..`,
//! links out of the root, devices. The `tar` crate's safe setters refuse such names, so the
//! name field is written byte by byte.

use std::io::Write;

pub enum Kind<'a> {
    File(&'a [u8]),
    Dir,
    Symlink(&'a str),
    HardLink(&'a str),
    CharDevice,
}

/// A tar + gzip archive of `entries`, names taken verbatim.
pub fn archive(entries: &[(&str, Kind<'_>)]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, kind) in entries {
        let mut header = tar::Header::new_old();
        {
            let bytes = header.as_old_mut();
            bytes.name = [0; 100];
            bytes.name[..name.len()].copy_from_slice(name.as_bytes());
        }
        header.set_mode(0o644);
        header.set_mtime(0);
        let data: &[u8] = match kind {
            Kind::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(data.len() as u64);
                data
            }
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                &[]
            }
            Kind::Symlink(target) | Kind::HardLink(target) => {
                header.set_entry_type(if matches!(kind, Kind::Symlink(_)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                });
                header.set_size(0);
                let bytes = header.as_old_mut();
                bytes.linkname = [0; 100];
                bytes.linkname[..target.len()].copy_from_slice(target.as_bytes());
                &[]
            }
            Kind::CharDevice => {
                header.set_entry_type(tar::EntryType::Char);
                header.set_size(0);
                &[]
            }
        };
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(data);
        let padding = (512 - data.len() % 512) % 512;
        tar.extend(std::iter::repeat_n(0u8, padding));
    }
    tar.extend(std::iter::repeat_n(0u8, 1024));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip in memory");
    gz.finish().expect("gzip in memory")
}
