//! The terminal report: plain tables with human sizes, loud lines for secrets. No colours, so
//! it reads the same in a CI log.

use std::fmt::Write as _;

use super::Xray;
use crate::report::human_bytes;

fn cut(text: &str, width: usize) -> String {
    let one_line = text.replace(['\n', '\t'], " ");
    if one_line.chars().count() <= width {
        one_line
    } else {
        let mut out: String = one_line.chars().take(width.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// The whole report as text.
pub fn text(x: &Xray) -> String {
    let mut o = String::new();
    let _ = write_report(&mut o, x);
    o
}

fn write_report(o: &mut String, x: &Xray) -> std::fmt::Result {
    let i = &x.image;
    writeln!(o, "Image      {} ({})", i.name, short(&i.id))?;
    writeln!(
        o,
        "Read from  {} in {:.2} s",
        i.source,
        x.elapsed_ms as f64 / 1000.0
    )?;
    writeln!(
        o,
        "Size       {} in {} layers; final filesystem {} files, {} dirs, {}",
        human_bytes(i.size_bytes),
        x.layers.len(),
        i.final_files,
        i.final_dirs,
        human_bytes(i.final_bytes)
    )?;
    let e = &x.efficiency;
    writeln!(
        o,
        "Efficiency {:.4} %   wasted {} ({} bytes)   user-wasted {:.4} %",
        e.efficiency * 100.0,
        human_bytes(e.wasted_bytes),
        e.wasted_bytes,
        e.user_wasted_ratio * 100.0
    )?;

    if !x.secrets.is_empty() {
        writeln!(
            o,
            "\n!!! SECRETS IN LAYERS: anyone with the image can extract these !!!"
        )?;
        for s in &x.secrets {
            let state = if s.removed_later {
                "REMOVED LATER BUT STILL SHIPPED"
            } else {
                "present"
            };
            writeln!(
                o,
                "  !! {}  ({}, layer {}, {state})",
                s.path, s.why, s.layer
            )?;
        }
    }

    writeln!(o, "\nLayers")?;
    writeln!(
        o,
        "  {:>3} {:>10} {:>7} {:>7} {:>7} {:>10}  instruction",
        "#", "size", "added", "modif", "remov", "shadowed"
    )?;
    for l in &x.layers {
        writeln!(
            o,
            "  {:>3} {:>10} {:>7} {:>7} {:>7} {:>10}  {}",
            l.index,
            human_bytes(l.size_bytes),
            l.files_added,
            l.files_modified,
            l.files_removed,
            human_bytes(l.bytes_shadowed_later),
            cut(&l.instruction, 70)
        )?;
    }

    if !e.inefficiencies.is_empty() {
        writeln!(
            o,
            "\nInefficient files (in several layers; dive's wasted space)"
        )?;
        for f in e.inefficiencies.iter().take(10) {
            writeln!(
                o,
                "  {:>5} {:>10}  {}",
                f.count,
                human_bytes(f.cumulative_size),
                f.path
            )?;
        }
        if e.inefficiencies.len() > 10 {
            writeln!(o, "  … {} more", e.inefficiencies.len() - 10)?;
        }
    }

    section(
        o,
        "Biggest files",
        x.biggest_files.iter().take(10).map(|p| (p.size, &p.path)),
    )?;
    section(
        o,
        "Biggest directories",
        x.biggest_dirs.iter().take(10).map(|p| (p.size, &p.path)),
    )?;

    if !x.duplicates.is_empty() {
        writeln!(
            o,
            "\nDuplicate files (same content, several paths): {} could be saved",
            human_bytes(x.duplicate_wasted_bytes)
        )?;
        for d in x.duplicates.iter().take(8) {
            writeln!(
                o,
                "  {:>10} × {}  {}",
                human_bytes(d.size),
                d.paths.len(),
                cut(&d.paths.join(", "), 90)
            )?;
        }
    }

    if !x.removed_but_shipped.is_empty() {
        writeln!(
            o,
            "\nRemoved in a later layer but still shipped: {}",
            human_bytes(x.removed_but_shipped_bytes)
        )?;
        for r in x.removed_but_shipped.iter().take(10) {
            let flag = r
                .secret
                .map(|why| format!("  !! SECRET: {why}"))
                .unwrap_or_default();
            writeln!(
                o,
                "  {:>10}  {}  (layer {} → removed in {}){flag}",
                human_bytes(r.size),
                r.path,
                r.added_in,
                r.removed_in
            )?;
        }
    }

    if !x.runtime_extras.is_empty() || !x.setuid_setgid.is_empty() {
        writeln!(o, "\nCarried but rarely needed at runtime")?;
        for c in &x.runtime_extras {
            let examples: Vec<&str> = c.examples.iter().map(|p| p.path.as_str()).take(3).collect();
            writeln!(
                o,
                "  {:<17} {:>10} {:>6} files  e.g. {}",
                c.name,
                human_bytes(c.bytes),
                c.files,
                cut(&examples.join(", "), 70)
            )?;
        }
        if !x.setuid_setgid.is_empty() {
            let bytes: u64 = x.setuid_setgid.iter().map(|s| s.size).sum();
            let names: Vec<String> = x
                .setuid_setgid
                .iter()
                .map(|s| format!("{} ({})", s.path, s.mode))
                .collect();
            writeln!(
                o,
                "  {:<17} {:>10} {:>6} files  {}",
                "setuid/setgid",
                human_bytes(bytes),
                x.setuid_setgid.len(),
                cut(&names.join(", "), 70)
            )?;
        }
    }

    let c = &x.config;
    writeln!(o, "\nConfig")?;
    writeln!(o, "  entrypoint  {:?}", c.entrypoint)?;
    writeln!(o, "  cmd         {:?}", c.cmd)?;
    let user = if c.user.is_empty() {
        "(unset: root)"
    } else {
        c.user.as_str()
    };
    let root = if c.runs_as_root {
        "  <- runs as root"
    } else {
        ""
    };
    writeln!(o, "  user        {user}{root}")?;
    writeln!(o, "  workdir     {}", c.working_dir)?;
    writeln!(o, "  ports       {}", c.exposed_ports.join(" "))?;
    writeln!(
        o,
        "  healthcheck {}",
        c.healthcheck.as_deref().unwrap_or("(none)")
    )?;
    for env in &c.env {
        writeln!(o, "  env         {}", cut(env, 100))?;
    }
    writeln!(o, "\nDockerfile (reconstructed from history)")?;
    for line in x.dockerfile.lines().filter(|l| !l.starts_with('#')) {
        writeln!(o, "  {}", cut(line, 110))?;
    }
    for w in &x.warnings {
        writeln!(o, "warning: {w}")?;
    }
    Ok(())
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

fn section<'a>(
    o: &mut String,
    title: &str,
    rows: impl Iterator<Item = (u64, &'a String)>,
) -> std::fmt::Result {
    writeln!(o, "\n{title}")?;
    for (size, path) in rows {
        writeln!(o, "  {:>10}  {}", human_bytes(size), path)?;
    }
    Ok(())
}
