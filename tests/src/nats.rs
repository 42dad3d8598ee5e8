//! A real nats-server per test, with JetStream, on free ports.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn binary() -> String {
    if let Ok(p) = std::env::var("CAIRN_NATS_SERVER") {
        return p;
    }
    for candidate in ["/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.into();
        }
    }
    "nats-server".into()
}

pub struct NatsServer {
    pub port: u16,
    pub store: PathBuf,
    /// The configuration directory of [`NatsServer::start_with_config`] (`nats.conf` and its includes).
    config_dir: Option<PathBuf>,
    child: Option<Child>,
}

impl NatsServer {
    pub async fn start() -> Self {
        let port = crate::free_port();
        let store = std::env::temp_dir().join(format!("cairn-nats-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&store).expect("store dir");
        let mut server = Self { port, store, config_dir: None, child: None };
        server.restart().await;
        server
    }

    /// A server started with `-c <dir>/nats.conf`, where `files` (`nats.conf` among them, with whatever
    /// it includes) are written to a fresh directory. As scripts/run does, the store directory goes
    /// into the configuration's `jetstream {` block (nats-server 2.9 refuses to reload a configuration
    /// whose store came from `-sd`); ports come from the command line.
    pub async fn start_with_config(files: &[(&str, &str)]) -> Self {
        let port = crate::free_port();
        let id = uuid::Uuid::new_v4().simple();
        let store = std::env::temp_dir().join(format!("cairn-nats-{id}"));
        let config_dir = std::env::temp_dir().join(format!("cairn-nats-conf-{id}"));
        std::fs::create_dir_all(&store).expect("store dir");
        std::fs::create_dir_all(&config_dir).expect("config dir");
        for (name, text) in files {
            let text = if *name == "nats.conf" {
                let block = format!("jetstream {{\n  store_dir: \"{}\"", store.display());
                assert!(text.contains("jetstream {"), "nats.conf has no `jetstream {{` block");
                text.replacen("jetstream {", &block, 1)
            } else {
                (*text).to_string()
            };
            std::fs::write(config_dir.join(name), text).expect("write nats config file");
        }
        let mut server = Self { port, store, config_dir: Some(config_dir), child: None };
        server.restart().await;
        server
    }

    /// The configuration directory of [`NatsServer::start_with_config`].
    pub fn config_dir(&self) -> Option<&std::path::Path> {
        self.config_dir.as_deref()
    }

    /// The server's log (servers started with a configuration only).
    pub fn log(&self) -> String {
        self.config_dir.as_ref().and_then(|d| std::fs::read_to_string(d.join("nats.log")).ok()).unwrap_or_default()
    }

    /// Asks the running server to reload its configuration (SIGHUP), as `cairnctl feed-credentials` does.
    pub fn reload(&self) {
        let pid = self.child.as_ref().expect("nats-server running").id();
        let status = Command::new("kill").args(["-HUP", &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -HUP {pid} failed");
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port and store; waits until it accepts connections.
    pub async fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(binary());
        match &self.config_dir {
            Some(dir) => command.arg("-c").arg(dir.join("nats.conf")).arg("-js"),
            None => command.args(["-js", "-sd"]).arg(&self.store),
        };
        let child = command
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            // With a configuration, keep the log: a refused configuration is otherwise a bare timeout.
            .stderr(match &self.config_dir {
                Some(dir) => std::fs::File::create(dir.join("nats.log")).map_or_else(|_| Stdio::null(), Stdio::from),
                None => Stdio::null(),
            })
            .spawn()
            .expect("start nats-server (scripts/test installs it)");
        self.child = Some(child);
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.is_ok() {
                // JetStream needs a moment after the listener is up.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("nats-server did not start on port {}\n{}", self.port, self.log());
    }

    /// Kills the server (SIGKILL).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and deletes its JetStream store.
    pub fn wipe(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
        std::fs::create_dir_all(&self.store).expect("store dir");
    }

    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.expect("connect to test nats-server")
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.store);
        if let Some(dir) = &self.config_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
