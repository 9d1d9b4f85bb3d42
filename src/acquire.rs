//! Where the source ("fat") image comes from before minify reads it: the daemon already has it;
//! or `--pull` pulls it from its registry when the daemon does not (credentials from
//! [`crate::docker::auth`]); or `--dockerfile` builds it through the daemon first, from a
//! context directory streamed as a tar ([`crate::docker::context`]). A pulled or built image is
//! the user's afterwards, like one they pulled or built themselves: minify deletes neither,
//! except the built one with `--delete-generated-fat-image`, once the build is over.

use std::path::{Path, PathBuf};

use crate::docker::{auth, context, DockerApi, ImageBuild};
use crate::{run, Error, Result};

/// How the source image gets into the daemon.
#[derive(Debug, Clone, Default)]
pub enum Acquire {
    /// It must be there already ([`Error::ImageNotFound`] otherwise).
    #[default]
    Local,
    /// Pulled when missing.
    Pull(PullOptions),
    /// Built from a Dockerfile, always (as `docker build` would, with the daemon's cache).
    Build(FatBuild),
}

/// `--pull` and its credentials, resolved only when a pull happens (a credential helper is not
/// asked for an image the daemon has).
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    pub registry_account: Option<String>,
    pub registry_secret: Option<String>,
    pub docker_config_path: Option<PathBuf>,
    /// docker-slim's `--show-plogs`: print the daemon's pull progress.
    pub show_progress: bool,
}

/// `--dockerfile` and the docker-slim container build options (`--cbo-*`).
#[derive(Debug, Clone, Default)]
pub struct FatBuild {
    /// The context directory.
    pub context: PathBuf,
    /// The Dockerfile on this host (inside the context or not).
    pub dockerfile: PathBuf,
    /// What the daemon is asked to build (`tag` = the fat image's name; `dockerfile` is filled
    /// in from the context plan).
    pub build: ImageBuild,
    /// `--delete-generated-fat-image`: remove the fat image when the build is over.
    pub delete_after: bool,
    /// docker-slim's `--show-blogs`: print the fat image's build output.
    pub show_log: bool,
}

/// What [`acquire`] did, for the report and for [`release`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acquired {
    /// The image was pulled by this run.
    pub pulled: bool,
    /// The fat image this run built (its tag).
    pub built: Option<String>,
    /// Milliseconds the pull or build took.
    pub ms: u64,
}

/// Makes `image` present in the daemon as `how` says. `phase` is told what is going on.
pub async fn acquire<D: DockerApi>(
    docker: &D,
    image: &str,
    how: &Acquire,
    phase: &dyn Fn(&str),
) -> Result<Acquired> {
    let started = std::time::Instant::now();
    let mut acquired = Acquired::default();
    match how {
        Acquire::Local => return Ok(acquired),
        Acquire::Pull(pull) => {
            match docker.inspect_image(image).await {
                Ok(_) => return Ok(acquired),
                Err(Error::ImageNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            phase("pulling image");
            let credentials = auth::resolve(
                image,
                pull.registry_account.as_deref(),
                pull.registry_secret.as_deref(),
                pull.docker_config_path.as_deref(),
            )?;
            eprintln!(
                "minify: {image} is not in the daemon: pulling it{}",
                match &credentials {
                    Some(c) => format!(" (as {} on {})", c.username, c.server),
                    None => String::new(),
                }
            );
            let show = pull.show_progress;
            let progress = move |line: &str| {
                if show {
                    eprintln!("pull: {line}");
                }
            };
            run::interruptible(docker.pull_image(image, credentials.as_ref(), &progress)).await?;
            acquired.pulled = true;
        }
        Acquire::Build(fat) => {
            phase("building fat image");
            let plan = context::plan(&fat.context, &fat.dockerfile)?;
            let mut build = fat.build.clone();
            build.dockerfile = plan.dockerfile.clone();
            eprintln!(
                "minify: building the fat image {} from {} (context {}: {} files and directories)",
                build.tag,
                fat.dockerfile.display(),
                fat.context.display(),
                plan.entries.len()
            );
            // An interrupt drops the request, and the daemon cancels a build whose client went
            // away before it tags anything: only a finished build made an image to delete.
            let output =
                run::interruptible(docker.build_image(&build, context::tar_stream(&plan))).await?;
            acquired.built = Some(build.tag.clone());
            if fat.show_log {
                eprint!("{output}");
            }
        }
    }
    acquired.ms = started.elapsed().as_millis() as u64;
    Ok(acquired)
}

/// After the build, on every path: removes the fat image this run built when
/// `--delete-generated-fat-image` asks for it (by its tag, as `docker rmi TAG`: an image that
/// also has other names only loses this one). Never touches a pulled or pre-existing image.
pub async fn release<D: DockerApi>(docker: &D, how: &Acquire, acquired: &Acquired) -> Result<()> {
    match (how, &acquired.built) {
        (Acquire::Build(fat), Some(tag)) if fat.delete_after => docker.remove_image(tag).await,
        _ => Ok(()),
    }
}

/// The fat image's name as docker-slim picks it: `--tag-fat`, else the slim `--tag` with `.fat`
/// added to its repository (`app:1` → `app.fat:1`), else a generated
/// `minify-tmp-fat-image.PID.SECONDS`.
pub fn fat_tag(tag_fat: Option<&str>, slim_tag: Option<&str>) -> String {
    if let Some(tag) = tag_fat {
        return tag.to_string();
    }
    if let Some(tag) = slim_tag {
        let slash = tag.rfind('/').map_or(0, |i| i + 1);
        return match tag[slash..].rfind(':') {
            Some(colon) => {
                let colon = slash + colon;
                format!("{}.fat:{}", &tag[..colon], &tag[colon + 1..])
            }
            None => format!("{tag}.fat"),
        };
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("minify-tmp-fat-image.{}.{secs}", std::process::id())
}

/// Finds `--dockerfile FILE` as docker-slim and the docker CLI do: an absolute path, else
/// relative to the context, else relative to the current directory.
pub fn find_dockerfile(file: &Path, context: &Path, cwd: &Path) -> Option<PathBuf> {
    if file.is_absolute() {
        return file.is_file().then(|| file.to_path_buf());
    }
    [context.join(file), cwd.join(file)]
        .into_iter()
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeDocker;
    use crate::docker::ImageSummary;

    fn image(id: &str) -> ImageSummary {
        ImageSummary {
            id: id.into(),
            ..ImageSummary::default()
        }
    }

    #[test]
    fn fat_tags_follow_docker_slim() {
        assert_eq!(fat_tag(Some("my/fat:1"), Some("x:2")), "my/fat:1");
        assert_eq!(fat_tag(None, Some("app:1")), "app.fat:1");
        assert_eq!(fat_tag(None, Some("host:5000/app")), "host:5000/app.fat");
        assert_eq!(
            fat_tag(None, Some("host:5000/app:v2")),
            "host:5000/app.fat:v2"
        );
        let generated = fat_tag(None, None);
        assert!(generated.starts_with(&format!("minify-tmp-fat-image.{}.", std::process::id())));
        crate::cli::validate_reference(&generated).unwrap();
    }

    #[test]
    fn the_dockerfile_is_found_in_the_context_then_the_current_directory() {
        let ctx = tempfile::tempdir().unwrap();
        let cwd = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), "FROM x").unwrap();
        std::fs::write(cwd.path().join("Other"), "FROM x").unwrap();
        let find = |f: &str| find_dockerfile(Path::new(f), ctx.path(), cwd.path());
        assert_eq!(find("Dockerfile"), Some(ctx.path().join("Dockerfile")));
        assert_eq!(find("Other"), Some(cwd.path().join("Other")));
        assert_eq!(find("Missing"), None);
    }

    #[tokio::test]
    async fn a_missing_image_is_pulled_with_the_flags_credentials_and_a_present_one_is_not() {
        let docker = FakeDocker::default();
        docker.registry.lock().unwrap().insert(
            "reg.example:5000/app:1".into(),
            (
                image("sha256:aa"),
                Vec::new(),
                Some(("u".into(), "p".into())),
            ),
        );
        let pull = |account: Option<&str>| {
            Acquire::Pull(PullOptions {
                registry_account: account.map(str::to_string),
                registry_secret: account.map(|_| "p".to_string()),
                ..PullOptions::default()
            })
        };
        let err = acquire(
            &docker,
            "reg.example:5000/app:1",
            &pull(Some("wrong")),
            &|_| {},
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::Pull { .. }), "{err}");
        assert!(err.to_string().contains("unauthorized"), "{err}");
        let done = acquire(&docker, "reg.example:5000/app:1", &pull(Some("u")), &|_| {})
            .await
            .unwrap();
        assert!(done.pulled);
        assert!(docker.find_image("reg.example:5000/app:1").is_some());
        // Now present: no second pull.
        let again = acquire(&docker, "reg.example:5000/app:1", &pull(Some("u")), &|_| {})
            .await
            .unwrap();
        assert!(!again.pulled);
        assert_eq!(
            docker
                .log()
                .iter()
                .filter(|c| c.starts_with("pull_image"))
                .count(),
            2
        );
        // Without --pull a missing image is not fetched.
        let local = acquire(
            &docker,
            "reg.example:5000/other:1",
            &Acquire::Local,
            &|_| {},
        )
        .await
        .unwrap();
        assert_eq!(local, Acquired::default());
    }

    #[tokio::test]
    async fn a_built_fat_image_is_deleted_only_when_asked_and_only_by_its_tag() {
        let ctx = tempfile::tempdir().unwrap();
        std::fs::write(ctx.path().join("Dockerfile"), "FROM base\nCOPY a /a\n").unwrap();
        std::fs::write(ctx.path().join("a"), "a").unwrap();
        let docker = FakeDocker::default();
        *docker.buildable.lock().unwrap() = Some((image("sha256:fat"), Vec::new()));
        let how = |delete_after| {
            Acquire::Build(FatBuild {
                context: ctx.path().to_path_buf(),
                dockerfile: ctx.path().join("Dockerfile"),
                build: ImageBuild {
                    tag: "app.fat:1".into(),
                    ..ImageBuild::default()
                },
                delete_after,
                show_log: false,
            })
        };
        let kept = how(false);
        let done = acquire(&docker, "app.fat:1", &kept, &|_| {}).await.unwrap();
        assert_eq!(done.built.as_deref(), Some("app.fat:1"));
        let builds = docker.builds.lock().unwrap().clone();
        assert_eq!(builds[0].0.dockerfile, "Dockerfile");
        assert_eq!(builds[0].1, ["Dockerfile", "a"]);
        release(&docker, &kept, &done).await.unwrap();
        assert!(docker.find_image("app.fat:1").is_some());
        let deleted = how(true);
        release(&docker, &deleted, &done).await.unwrap();
        assert!(docker.find_image("app.fat:1").is_none());
        // A failed build says so with the build's output.
        *docker.buildable.lock().unwrap() = None;
        let err = acquire(&docker, "app.fat:1", &kept, &|_| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Step 1/2"), "{err}");
    }
}
