//! A download: the answer's body streamed to a temporary file beside the destination, renamed
//! onto it only once the whole body has arrived. An error, a cut connection or a stopped task
//! leaves no file behind and whatever was at the destination as it was.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::{Client, HttpError, Request, read_chunks};

impl Client {
    /// Fetches `request` into `dest` (replaced if it exists); the number of bytes written. An
    /// answer whose status is not 2xx is an error ([`HttpError::Status`]); nothing is written.
    pub fn download(&self, request: &Request, dest: &Path, cancel: &AtomicBool) -> Result<u64, HttpError> {
        let mut response = self.send(request)?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(HttpError::Status { url: request.shown_url(), status });
        }
        let io = |path: &Path| {
            let url = request.shown_url();
            let path = path.to_path_buf();
            move |source| HttpError::Io { url, path, source }
        };
        let dir = match dest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        // `.<name>.<random>.part`, its name cut short to stay within a name's 255 bytes.
        let name: String =
            dest.file_name().map(|name| name.to_string_lossy().chars().take(64).collect()).unwrap_or_default();
        // Mode 0666 less the umask, as a file the program created itself (tempfile's own is 0600).
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .permissions(std::fs::Permissions::from_mode(0o666))
            .tempfile_in(dir)
            .map_err(io(dest))?;
        let mut file = std::io::BufWriter::with_capacity(super::CHUNK, temp.as_file());
        let mut written = 0u64;
        read_chunks(response.body_mut().as_reader(), request, cancel, |chunk| {
            written += chunk.len() as u64;
            file.write_all(chunk).map_err(io(temp.path()))
        })?;
        file.flush().map_err(io(temp.path()))?;
        drop(file);
        temp.as_file().sync_all().map_err(io(temp.path()))?;
        temp.persist(dest).map_err(|error| io(dest)(error.error))?;
        Ok(written)
    }
}
