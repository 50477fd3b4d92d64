//! `license-demo` binary: serves by default, `license-demo stress` drives load.

use clap::Parser;
use license_demo::auth::SecurityConfig;
use license_demo::cli::{
    default_usage_path, Cli, Command, SeedArgs, ServeArgs, StressArgs, DEFAULT_BIND,
};
use license_demo::config::{default_tools, load_tools_file};
use license_demo::pool::DbLocation;
use license_demo::server::{self, ClusterOptions, ServerConfig};
use license_demo::stress::{self, report};
use realtime_layer::StreamConfig;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Some(Command::Stress(args)) => stress_main(&args, &runtime),
        Some(Command::SeedUsage(args)) => seed_main(&args),
        None => serve_main(&cli.serve, &runtime),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn serve_main(args: &ServeArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .map_err(|e| anyhow::anyhow!("invalid --log filter {:?}: {e}", args.log))?;
    tracing_subscriber::fmt().with_env_filter(filter).init();
    raise_descriptor_limit();
    let tools = match &args.tools {
        Some(path) => load_tools_file(path)?,
        None => default_tools(),
    };
    let tool_count = tools.len();
    let config = ServerConfig {
        bind: args.bind,
        db: DbLocation::parse(&args.db),
        tools,
        durability: args.durability,
        cluster: args.redis.as_ref().map(|url| ClusterOptions {
            redis_url: url.expose().to_string(),
            name: args.cluster_name.clone(),
            instance_id: args.instance_id.clone(),
            pool_scope: args.pool_scope.into(),
        }),
        security: SecurityConfig::from_args(args)?,
        serve: args.limits.to_serve_config(),
        stream: StreamConfig {
            push_delay: Duration::from_millis(args.push_delay_ms),
            max_push_delay: Duration::from_millis(args.max_push_delay_ms),
            frame_budget: args.stream_frame_budget,
            max_streams: args.max_streams as usize,
            ..StreamConfig::default()
        },
        usage: args.usage_path(),
        clock_offset_ms: args.clock_offset_ms,
    };
    let usage = config.usage.clone();
    runtime.block_on(async {
        let server = server::start(config).await?;
        let url = server.url();
        println!(
            "License server listening on {url} (database {}, {tool_count} tools)",
            args.db
        );
        // One write for both lines (a reader that stops after the first line sees both or none).
        let usage_line = match &usage {
            Some(path) => format!(
                "Usage tier: {} (report: {url}/realtime/report, advice: {url}/realtime/advice)",
                path.display()
            ),
            None => "Usage tier: off".to_string(),
        };
        println!("Dashboard: {url}/realtime\n{usage_line}");
        if let Some(url) = &args.redis {
            println!(
                "Cluster mode: {} on {} (instance {})",
                args.cluster_name,
                realtime_layer::redact_redis_url(url.expose()),
                server.instance_id()
            );
        }
        println!("Stress it: license-demo stress --profile medium --target {url}");
        let stop = server.shutdown_token();
        let deadline = args.limits.shutdown_deadline;
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!(?deadline, "shutting down (a second signal exits at once)");
            stop.cancel();
            wait_for_signal().await;
            // Every acknowledged borrow or return is committed already: nothing is lost.
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        });
        server.wait().await?;
        Ok(ExitCode::SUCCESS)
    })
}

/// A thousand idle connections reach the common soft limit of 1,024 descriptors: raise it to the
/// hard limit (the connection cap is derived from the result).
fn raise_descriptor_limit() {
    match realtime_layer::serve::raise_nofile_limit() {
        Ok((Some(before), Some(after))) if before.soft != after.soft => tracing::info!(
            from = before.soft,
            to = after.soft,
            "raised the open-file limit (RLIMIT_NOFILE) to its hard limit"
        ),
        Ok((_, Some(now))) => tracing::info!(soft = now.soft, hard = now.hard, "open-file limit"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
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

fn seed_main(args: &SeedArgs) -> anyhow::Result<ExitCode> {
    let tools = match &args.tools {
        Some(path) => load_tools_file(path)?,
        None => default_tools(),
    };
    let Some(path) = args.usage.clone().or_else(|| default_usage_path(&args.db)) else {
        anyhow::bail!("--db :memory: keeps no usage tier: give --usage PATH");
    };
    let summary =
        license_demo::seed::seed_usage(&path, &tools, args.days, args.seed, args.replace)?;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}

fn stress_main(args: &StressArgs, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let interactive = args.is_empty() && std::io::stdin().is_terminal();
    let mut config = if interactive {
        let default_target = format!("http://{DEFAULT_BIND}");
        let asked = stress::interactive::ask(&default_target, |target| {
            runtime.block_on(stress::list_tools(target))
        })?;
        match asked {
            Some(c) => c,
            None => {
                eprintln!("cancelled");
                return Ok(ExitCode::SUCCESS);
            }
        }
    } else {
        if args.is_empty() {
            eprintln!(
                "stdin is not a terminal: running the light profile against http://{DEFAULT_BIND}"
            );
        }
        args.to_config()?
    };
    config.progress = !args.no_progress && !args.json && std::io::stderr().is_terminal();
    let report = runtime.block_on(stress::run(config))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::render(&report));
    }
    Ok(ExitCode::SUCCESS)
}
