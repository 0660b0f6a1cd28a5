//! `panel`: runs the server. Everything else lives in the library.

use clap::Parser as _;
use panel::config::{Cli, Command};
use panel::startup::Application;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    env_logger::init_from_env(env_logger::Env::new().default_filter_or("info"));
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        None => cli.serve,
    };
    let app = Application::build(args.settings(|k| std::env::var(k).ok())?).await?;
    println!("{}", app.banner());
    app.run_until_stopped().await?;
    Ok(())
}
