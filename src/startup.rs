//! Building and running the server. `main` and the tests build it the same
//! way, through [`Application::build`]; tests pass port 0.

use std::net::TcpListener;
use std::sync::Arc;

use actix::prelude::*;
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{App, HttpServer, web};
use actix_web_lab::middleware::CatchPanic;
use panel_actors::counterfactual::book::{BookDeps, Replays, StopReplays};
use panel_actors::event_log::LogWriter;
use panel_actors::event_log::recovery::recover_all;
use panel_actors::pricing::Pricing;
use panel_actors::provider::anthropic::Anthropic;
use panel_actors::provider::openai::OpenAi;
use panel_actors::provider::rehearsal::Rehearsal;
use panel_actors::provider::{Provider, ProviderFactory, ProviderInfo};
use panel_actors::registry::{Directory, Lanes, Registry, StopAll};
use panel_actors::roster::Library;
use panel_actors::session::{Limits, SessionDeps};
use panel_actors::templates::{Renderer, Templates};

use crate::config::{ProviderChoice, Settings};
use crate::exit::Exit;
use crate::guard::{GuardConfig, guard};
use crate::invite::Invites;
use crate::routes::{self, AppState};

pub struct Application {
    port: u16,
    server: Server,
    registry: Addr<Registry>,
    replays: Addr<Replays>,
    banner: String,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if !settings.addr.ip().is_loopback() && settings.token.is_none() {
            return Err(Exit::Usage.error(format!("listening on {} (beyond loopback) needs --token", settings.addr)));
        }
        if let Some(dir) = &settings.static_dir {
            anyhow::ensure!(dir.is_dir(), "the --static folder {} does not exist", dir.display());
        }
        // The port first: a taken port must fail before any thread, arbiter
        // or writer exists, so nothing is torn down half-started.
        let listener = TcpListener::bind(settings.addr)
            .map_err(|e| Exit::CannotStart.error(format!("cannot listen on {}: {e}", settings.addr)))?;
        let characters = settings.roster.join("characters");
        let library = Library::open(&characters)?;
        let roster = library.current();
        for problem in roster.problems() {
            log::warn!("roster: skipped {problem}");
        }
        anyhow::ensure!(
            roster.characters().next().is_some(),
            "no characters could be loaded from {}",
            characters.display()
        );
        let prompts = settings.roster.join("prompts");
        let templates = Templates::load(&prompts)?;
        let pricing = Pricing::load(&settings.roster.join("pricing.toml"))?;
        let mut offered = vec![provider_factory(&settings, &settings.provider, &prompts)?];
        for other in &settings.other_providers {
            offered.push(provider_factory(&settings, other, &prompts)?);
        }
        if !offered.iter().any(|(info, _)| info.name == "rehearsal") {
            offered.push(provider_factory(&settings, &ProviderChoice::Rehearsal, &prompts)?);
        }
        let info = offered[0].0.clone();
        let providers: Vec<ProviderInfo> = offered.iter().map(|(info, _)| info.clone()).collect();
        let factories: Vec<(String, ProviderFactory)> =
            offered.into_iter().map(|(info, factory)| (info.name, factory)).collect();
        std::fs::create_dir_all(&settings.logs).map_err(|e| {
            Exit::CannotStart.error(format!("cannot create the logs folder {}: {e}", settings.logs.display()))
        })?;

        // Repair what a crash left behind before anyone can watch it, so no
        // tailer ever sees a turn that can no longer end.
        let recovered = {
            let (logs, durability) = (settings.logs.clone(), settings.durability);
            actix_web::rt::task::spawn_blocking(move || recover_all(&logs, durability)).await?
        };
        for r in &recovered.repaired {
            let turn = r.turn.map(|t| format!(", turn {t} closed as aborted")).unwrap_or_default();
            log::warn!("session {}: repaired at start-up ({} torn bytes cut{turn})", r.id, r.torn_bytes);
        }
        for (id, problem) in &recovered.problems {
            log::error!("session {id}: its log cannot be checked: {problem}");
        }
        // The viewer reads logs/index.json; give it one from the start.
        let index = settings.logs.join("index.json");
        if !index.exists() {
            let logs = settings.logs.clone();
            actix_web::rt::task::spawn_blocking(move || {
                let (text, _) = panel_actors::record::index(&logs);
                panel_actors::record::write_atomic(&logs.join("index.json"), &text)
            })
            .await??;
        }

        let directory = Arc::new(Directory::new(recovered.sessions));
        let observer = directory.clone();
        let writer = LogWriter::start(settings.log_writers, Some(Arc::new(move |l: &_| observer.observe(l))));
        let lanes_n = if settings.lanes > 0 { settings.lanes } else { cores() };
        let lanes = Lanes::start(lanes_n, &factories, settings.retry);
        // Roster changes — from the app or by hand — are picked up without a restart.
        let watched = library.clone();
        actix_web::rt::spawn(async move {
            loop {
                actix_web::rt::time::sleep(std::time::Duration::from_secs(1)).await;
                let library = watched.clone();
                let _ = actix_web::rt::task::spawn_blocking(move || library.refresh()).await;
            }
        });
        let roster = library;
        let pricing = Arc::new(pricing);
        // Replays have a book of their own (and a log writer no directory observes).
        let book = BookDeps {
            logs: settings.logs.clone(),
            pricing: pricing.clone(),
            durability: settings.durability,
            capacity: settings.subscriber_queue,
            solo_template: templates.solo.clone(),
            max_tokens: settings.max_tokens,
        };
        let replays = Replays::new(book).start();
        let deps = SessionDeps {
            logs: settings.logs.clone(),
            roster: roster.clone(),
            renderer: Arc::new(Renderer::new(templates)?),
            pricing,
            model: lanes.get(0).model.clone(),
            provider: info.clone(),
            providers: Arc::new(providers),
            max_tokens: settings.max_tokens,
            cache_ttl: settings.cache_ttl,
            writer,
            durability: settings.durability,
            limits: Limits::default(),
            supervisor: None,
            passivate_after: settings.passivate_after,
            time_scale: settings.time_scale,
            keep_warm_cap: settings.keep_warm_cap,
            default_window: settings.context_tokens,
        };
        let registry = Registry::new(deps, lanes, settings.subscriber_queue, directory.clone())
            .with_max_running(max_running(settings.max_running))
            .with_constrain(settings.constrain)
            .with_replays(replays.clone())
            .start();

        let local = listener.local_addr()?;
        let state = web::Data::new(AppState {
            registry: registry.clone(),
            logs: settings.logs.clone(),
            roster,
            provider: info.clone(),
            debug_routes: settings.debug_routes,
            keep_alive: settings.keep_alive,
            directory: directory.clone(),
            streams: Default::default(),
            replays: replays.clone(),
        });
        // Invites exist only behind a token; they are kept beside the logs.
        let invites = match settings.token {
            Some(_) => {
                let logs = settings.logs.clone();
                Some(Arc::new(actix_web::rt::task::spawn_blocking(move || Invites::load(&logs)).await?))
            }
            None => None,
        };
        let guard_config =
            web::Data::new(GuardConfig::new(settings.token.clone(), local.port()).with_invites(invites.clone()));
        let static_dir = settings.static_dir.clone();
        let logs_dir = settings.logs.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(guard_config.clone())
                .configure(|cfg| {
                    if let Some(invites) = &invites {
                        cfg.app_data(web::Data::from(invites.clone()));
                    }
                })
                .configure(|cfg| routes::configure(cfg, static_dir.as_deref(), &logs_dir))
                .wrap(from_fn(guard))
                .wrap(CatchPanic::default())
        })
        .listen(listener)?
        // A client that closes its side has gone: end its response at once, so
        // an event stream waiting for the next event is dropped (and its
        // subscriber forgotten) now, not at the next failed keep-alive write.
        .h1_allow_half_closed(false)
        // Open SSE streams would hold a graceful shutdown for the default 30 s;
        // the registry ends them first, so a short grace is enough.
        .shutdown_timeout(2)
        .disable_signals();
        if settings.workers > 0 {
            server = server.workers(settings.workers);
        }
        let banner = banner(&settings, local, &info);
        Ok(Self { port: local.port(), server: server.run(), registry, replays, banner })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// What `panel serve` prints at start-up.
    pub fn banner(&self) -> &str {
        &self.banner
    }

    /// A handle that shuts this application down the way a signal does.
    pub fn stopper(&self) -> Stopper {
        Stopper { registry: self.registry.clone(), replays: self.replays.clone(), server: self.server.handle() }
    }

    /// Serves until SIGINT or SIGTERM (or [`Stopper::stop`]), then shuts
    /// down cleanly: turns in flight are aborted and logged, logs flushed,
    /// streams ended.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let stopper = self.stopper();
        actix_web::rt::spawn(async move {
            shutdown_signal().await;
            stopper.stop().await;
        });
        self.server.await
    }
}

/// How long a stop waits for the replays being played to close their logs.
const REPLAY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops an [`Application`] cleanly.
#[derive(Clone)]
pub struct Stopper {
    registry: Addr<Registry>,
    replays: Addr<Replays>,
    server: actix_web::dev::ServerHandle,
}

impl Stopper {
    pub async fn stop(self) {
        log::info!("shutting down: aborting turns in flight and closing streams");
        // A replay's sample in flight ends as interrupted, its log closed,
        // rather than left for the next start to repair.
        let _ = self.replays.send(StopReplays { grace: REPLAY_GRACE }).await;
        let _ = self.registry.send(StopAll).await;
        self.server.stop(true).await;
    }
}

/// A configured provider, and how each lane builds its own copy of it.
fn provider_factory(
    settings: &Settings,
    choice: &ProviderChoice,
    prompts: &std::path::Path,
) -> anyhow::Result<(ProviderInfo, ProviderFactory)> {
    Ok(match choice {
        ProviderChoice::Rehearsal => {
            let rehearsal = Rehearsal::load(prompts, settings.rehearsal_pace)?
                .with_time_scale(settings.time_scale)
                .with_window(settings.rehearsal_window);
            (rehearsal.info(), Arc::new(move || Box::new(rehearsal.clone()) as Box<dyn Provider>))
        }
        ProviderChoice::Anthropic(config) => {
            let config = config.clone();
            let info = Anthropic::new(config.clone()).info();
            (info, Arc::new(move || Box::new(Anthropic::new(config.clone())) as Box<dyn Provider>))
        }
        ProviderChoice::OpenAi(config) => {
            let config = config.clone();
            let info = OpenAi::new(config.clone()).info();
            (info, Arc::new(move || Box::new(OpenAi::new(config.clone())) as Box<dyn Provider>))
        }
    })
}

/// How many session actors may run at once. Each holds its log open, and
/// connections need files too: by default, half of what the open-file limit
/// leaves after a reserve for the server itself.
fn max_running(configured: usize) -> usize {
    if configured > 0 {
        return configured;
    }
    let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
    let files = usize::try_from(soft).unwrap_or(usize::MAX);
    (files.saturating_sub(64) / 2).clamp(8, 100_000)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn banner(settings: &Settings, local: std::net::SocketAddr, info: &ProviderInfo) -> String {
    let model = if info.offline {
        format!("{} — the offline rehearsal engine (no API key in use; costs are simulated)", info.model)
    } else {
        format!("{} via {}", info.model, info.name)
    };
    let host = if local.ip().is_loopback() { format!("localhost:{}", local.port()) } else { local.to_string() };
    let token = settings.token.as_ref().map(|_| "?token=<your token>").unwrap_or_default();
    let pace = if info.offline {
        format!("\n  pace:   {} ms between streamed pieces", settings.rehearsal_pace.as_millis())
    } else {
        String::new()
    };
    let why = |w: &Option<String>| w.as_ref().map(|w| format!(" ({w})")).unwrap_or_default();
    let app = match &settings.static_dir {
        Some(dir) => format!("{} (--static)", dir.display()),
        None => "built in".to_owned(),
    };
    format!(
        "panel is listening on http://{host}/{token}\n  model:  {model}\n  roster: {}{}\n  logs:   {}{}\n  app:    \
         {app}{pace}",
        settings.roster.display(),
        why(&settings.roster_why),
        settings.logs.display(),
        why(&settings.logs_why),
    )
}
