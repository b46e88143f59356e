//! The store's files on disk: which they are, and who may read them.

use crate::index;
use std::path::{Path, PathBuf};

/// The files of the database at `path`: its own, SQLite's journals, and the search index's.
pub fn files_of(path: &Path) -> Vec<PathBuf> {
    let index = index::path_for(path);
    let mut files = Vec::new();
    for base in [path, index.as_path()] {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = base.as_os_str().to_owned();
            p.push(suffix);
            files.push(PathBuf::from(p));
        }
    }
    files
}

/// Makes the database's files readable by the server's user only: they hold every app's
/// signing key. The database and index files are created that way before SQLite opens them
/// (SQLite gives its journals the mode of their database), and existing ones are changed.
pub(crate) fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        for main in [path.to_path_buf(), index::path_for(path)] {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&main)?;
        }
        for file in files_of(path) {
            match std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}
