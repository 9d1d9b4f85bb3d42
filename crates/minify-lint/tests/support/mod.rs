//! Walking the lint corpus: its case directories and the one Dockerfile each holds. Shared by
//! the linter's own corpus tests and, included by path, the `minify lint` command tests at the
//! workspace root, which each say where the corpus is from their own manifest directory.

use std::path::{Path, PathBuf};

/// The case directories of `corpus` (those with an `expected` file), sorted.
pub fn cases_in(corpus: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus)
        .unwrap_or_else(|e| panic!("the lint corpus {}: {e}", corpus.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("expected").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// The case's Dockerfile (or Containerfile), as `minify lint` discovers it.
pub fn dockerfile_in(dir: &Path) -> PathBuf {
    let found = minify_lint::discover(&[dir.to_path_buf()]).unwrap();
    assert_eq!(
        found.len(),
        1,
        "one Dockerfile per case in {}",
        dir.display()
    );
    found[0].clone()
}
