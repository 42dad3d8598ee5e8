//! `cairnctl migrate` and `cairnctl bootstrap`.

use crate::BoxError;
use cairn_platform::{Settings, connect};
use std::path::Path;

pub(crate) async fn migrate(settings: &Settings) -> Result<(), BoxError> {
    let (mut client, connection) = tokio_postgres::connect(settings.database_url.expose(), tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let applied = cairn_eventlog::migrate::migrate(&mut client).await?;
    if applied.is_empty() {
        println!("migrations: up to date");
    } else {
        for name in applied {
            println!("migrations: applied {name}");
        }
    }
    Ok(())
}

pub(crate) async fn bootstrap(settings: &Settings, key_file: &Path) -> Result<(), BoxError> {
    let pool = connect::pg_pool(settings)?;
    match cairn_api::bootstrap::bootstrap(settings, &pool).await? {
        None => {
            println!("bootstrap: already done (the admin key was written to {} on first start)", key_file.display());
            let seeded = cairn_api::bootstrap::seed_templates(settings, &pool).await?;
            if seeded > 0 {
                println!("bootstrap: {seeded} event template(s) added");
            }
        }
        Some(b) => {
            if let Some(dir) = key_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            write_secret(key_file, &b.key)?;
            println!(
                "bootstrap: host organisation {:?} (id {}) and site admin {} created at position {}",
                b.org.name, b.org.id, b.user.email, b.position
            );
            println!("bootstrap: admin API key (also in {}): {}", key_file.display(), b.key);
        }
    }
    Ok(())
}

fn write_secret(path: &Path, secret: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    writeln!(f, "{secret}")
}
