//! `panel`: runs the server, or one of the commands on recorded sessions.
//! Everything else lives in the library. An error ends it with one line
//! and an exit code that says what kind of failure it was (`panel::exit`).

use std::process::ExitCode;

use panel::config::{Cli, Command, home};
use panel::startup::Application;
use panel::{commands, exit, export, launch};

fn main() -> ExitCode {
    let cli = Cli::from_env();
    // The server logs what it does; the commands print their own output.
    let quiet = matches!(
        cli.command,
        Some(
            Command::Tail(_)
                | Command::Run(_)
                | Command::Report(_)
                | Command::Data(_)
                | Command::Roster(_)
                | Command::Study(_)
                | Command::Compare(_)
                | Command::Replay(_)
                | Command::Completions { .. }
        )
    );
    env_logger::init_from_env(env_logger::Env::new().default_filter_or(if quiet { "warn" } else { "info" }));
    let outcome = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Close(args)) => home::ready_roster(&args.roster).and_then(|_| commands::close(args)),
        Some(Command::Rebuild(args)) => commands::rebuild(args),
        Some(Command::Audit(args)) => commands::audit(args),
        Some(Command::Export(args)) => export::export(args),
        Some(Command::Tail(args)) => panel::tail::tail(args),
        Some(Command::Run(args)) => panel::run::run(args),
        Some(Command::Report(args)) => panel::report::report(args),
        Some(Command::Data(args)) => panel::data::data(args),
        Some(Command::Study(args)) => panel::study::study(args),
        Some(Command::Compare(args)) => panel::compare::compare(args),
        Some(Command::Replay(args)) => panel::replay::replay(args),
        Some(Command::Roster(args)) => {
            let (panel::config::RosterAction::Import { roster, .. }
            | panel::config::RosterAction::Export { roster, .. }) = &args.action;
            home::ready_roster(roster).and_then(|_| panel::library::roster(args))
        }
        Some(Command::Completions { shell }) => launch::completions(shell),
    };
    match outcome {
        Ok(code) => code,
        // One line, the causes joined: a user's mistake is no backtrace.
        Err(e) => {
            eprintln!("panel: {}", exit::one_line(&e));
            exit::code_of(&e)
        }
    }
}

fn serve(args: panel::config::ServeArgs) -> anyhow::Result<ExitCode> {
    let open = args.open;
    let mut settings = args.settings(|k| std::env::var(k).ok())?;
    settings.ready_folders()?;
    let token = settings.token.clone();
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        println!("{}", app.banner());
        if open {
            // The port is bound already: the browser's first request waits
            // in the backlog until the server accepts.
            launch::open_browser(&launch::app_url(app.port(), token.as_deref()));
        }
        app.run_until_stopped().await?;
        Ok(ExitCode::SUCCESS)
    })
}
