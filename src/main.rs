//! `panel`: runs the server, or one of the commands on recorded sessions.
//! Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser as _;
use panel::config::{Cli, Command};
use panel::startup::Application;
use panel::{commands, export};

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        )
    );
    env_logger::init_from_env(env_logger::Env::new().default_filter_or(if quiet { "warn" } else { "info" }));
    let outcome = match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Close(args)) => commands::close(args),
        Some(Command::Rebuild(args)) => commands::rebuild(args),
        Some(Command::Audit(args)) => commands::audit(args),
        Some(Command::Export(args)) => export::export(args),
        Some(Command::Tail(args)) => panel::tail::tail(args),
        Some(Command::Run(args)) => panel::run::run(args),
        Some(Command::Report(args)) => panel::report::report(args),
        Some(Command::Data(args)) => panel::data::data(args),
        Some(Command::Roster(args)) => panel::library::roster(args),
        Some(Command::Study(args)) => panel::study::study(args),
        Some(Command::Compare(args)) => panel::compare::compare(args),
    };
    match outcome {
        Ok(code) => code,
        // One line, the causes joined: a user's mistake is no backtrace.
        Err(e) => {
            eprintln!("panel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve(args: panel::config::ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = args.settings(|k| std::env::var(k).ok())?;
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        println!("{}", app.banner());
        app.run_until_stopped().await?;
        Ok(ExitCode::SUCCESS)
    })
}
