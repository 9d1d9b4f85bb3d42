//! Ruby gems: the `specifications/NAME-VERSION.gemspec` (and `specifications/default/…`, Ruby's
//! default gems) that RubyGems writes under each gem dir (`/usr/lib/ruby/gems/3.1.0`, Debian's
//! `/usr/share/rubygems-integration/all`, `/usr/local/bundle`). Name, version and licenses are
//! read from the gemspec (RubyGems writes it as plain Ruby literals), the file name is the
//! fallback. A gem's files are its `gems/NAME-VERSION/` tree when the gem dir has one; a
//! Debian-packaged gem has its code elsewhere (its Debian package says where), so its gemspec
//! stands for it: RubyGems reads every gemspec it activates, so a used gem's gemspec is kept.

use super::{licenses, LanguagePackage};
use crate::closure::resolve::parent_of;
use crate::image::{EntryKind, FsIndex, ImageView};

/// The quoted strings of the Ruby assignment `s.KEY = …` (first such line).
fn strings(spec: &str, key: &str) -> Option<Vec<String>> {
    let prefix = format!("s.{key} = ");
    let line = spec
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(&prefix))?;
    Some(
        line.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// `(name, version)` from a gemspec file name: the version starts at the first `-DIGIT`
/// (`net-http-0.2.0`, `nokogiri-1.15.0-x86_64-linux`).
fn from_file_name(stem: &str) -> Option<(String, String)> {
    let at = stem
        .char_indices()
        .find(|(i, c)| {
            *c == '-'
                && stem[i + 1..]
                    .chars()
                    .next()
                    .is_some_and(|d| d.is_ascii_digit())
        })
        .map(|(i, _)| i)?;
    Some((stem[..at].to_string(), stem[at + 1..].to_string()))
}

/// The gem a `…/specifications/[default/]NAME-VERSION.gemspec` describes.
pub(super) fn gem<V: ImageView + ?Sized>(
    index: &FsIndex,
    view: &V,
    path: &str,
    kept: &impl Fn(&str) -> bool,
) -> Option<LanguagePackage> {
    let dir = parent_of(path);
    let root = match dir.strip_suffix("/specifications/default") {
        Some(root) => root,
        None => dir.strip_suffix("/specifications")?,
    };
    let stem = path.rsplit('/').next()?.strip_suffix(".gemspec")?;
    let text = view.read(path, 1 << 20).ok()?;
    let spec = String::from_utf8_lossy(&text);
    let (file_name, file_version) = from_file_name(stem).unzip();
    let name = strings(&spec, "name")
        .and_then(|s| s.into_iter().next())
        .or(file_name)?;
    let version = strings(&spec, "version")
        .and_then(|s| s.into_iter().next())
        .or(file_version)
        .unwrap_or_default();
    let license = strings(&spec, "licenses")
        .or_else(|| strings(&spec, "license"))
        .and_then(|names| licenses::any_of(&names));
    let prefix = format!("{root}/gems/{stem}/");
    let mut files: Vec<&str> = index
        .entries
        .range(prefix.clone()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .filter(|(_, e)| e.kind != EntryKind::Dir)
        .map(|(p, _)| p.as_str())
        .collect();
    if files.is_empty() {
        files.push(path);
    }
    Some(LanguagePackage::new(
        "gem", None, name, version, license, path, &files, kept,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::closure::fake::FakeImage;
    use crate::packages::Kept;

    #[test]
    fn gemspecs_with_and_without_a_gem_tree() {
        let mut image = FakeImage::new();
        let root = "/usr/lib/ruby/gems/3.1.0";
        image.file(
            &format!("{root}/specifications/csv-3.2.2.gemspec"),
            b"# stub: csv 3.2.2 ruby lib\nGem::Specification.new do |s|\n  s.name = \"csv\".freeze\n  s.version = \"3.2.2\"\n  s.licenses = [\"Ruby\".freeze, \"BSD-2-Clause\".freeze]\nend\n",
        );
        image.file(&format!("{root}/gems/csv-3.2.2/lib/csv.rb"), b"x");
        image.file(&format!("{root}/gems/csv-3.2.2/lib/csv/row.rb"), b"x");
        image.file(
            &format!("{root}/specifications/default/net-http-0.2.0.gemspec"),
            b"Gem::Specification.new do |s|\nend\n",
        );
        let debian = "/usr/share/rubygems-integration/all/specifications/sinatra-3.0.5.gemspec";
        image.file(
            debian,
            b"Gem::Specification.new do |s|\n  s.name = \"sinatra\".freeze\n  s.version = \"3.0.5\"\n  s.license = \"MIT\"\nend\n",
        );
        image.file("/app/specifications.gemspec", b"s.name = \"not-a-gem\"\n");
        let index = FsIndex {
            entries: image.entries.clone(),
        };
        let kept = |p: &str| p.ends_with("/lib/csv.rb") || p == debian;
        let found: Vec<LanguagePackage> = index
            .iter()
            .filter(|e| e.path.ends_with(".gemspec"))
            .filter_map(|e| gem(&index, &image, &e.path, &kept))
            .collect();
        let summary: Vec<(&str, &str, Kept, usize, usize)> = found
            .iter()
            .map(|g| {
                (
                    g.name.as_str(),
                    g.version.as_str(),
                    g.kept,
                    g.files_kept,
                    g.files_total,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("csv", "3.2.2", Kept::Partly, 1, 2),
                ("net-http", "0.2.0", Kept::Gone, 0, 1),
                ("sinatra", "3.0.5", Kept::Whole, 1, 1),
            ]
        );
        assert_eq!(
            found[0].license.as_ref().unwrap().expression,
            "Ruby OR BSD-2-Clause"
        );
        assert_eq!(found[2].license.as_ref().unwrap().expression, "MIT");
        assert!(found[1].license.is_none());
    }
}
