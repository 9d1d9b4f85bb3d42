//! shell: search paths and the scanner (being written).

use crate::closure::lang::Found;

use crate::closure::ImageView;

#[derive(Debug, Clone, Default)]
pub struct Paths {}

impl Paths {
    pub fn discover<V: ImageView + ?Sized>(_view: &V, _env: &[String], _workdir: &str) -> Self {
        Self {}
    }
}

pub fn dependencies<V: ImageView + ?Sized>(
    _view: &V,
    _paths: &Paths,
    _file: &str,
    _source: &str,
) -> Found {
    Found::default()
}
