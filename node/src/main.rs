//! `zsl`: the ZSL node and its command line.
//!
//! Owns: config, CLI, wiring ledger + consensus + API into a process, devnet
//! supervision, and client-side helpers (signing, submitting, replay).

// A dependency this target does not use is an error under clippy's
// `-D warnings` (scripts/test); test targets see dev-dependencies too.
#![cfg_attr(not(test), warn(unused_crate_dependencies))]

mod backup;
mod client;
mod config;
mod demo;
mod devnet;
mod import;
mod replay;
mod run;
mod tls;
mod verify;
mod witnessing;

use std::path::PathBuf;

// mimalloc instead of glibc malloc: the state machine allocates many small
// keys and values per transaction; see bench/RESULTS.md for the measurement.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "zsl",
    version,
    about = "浙食链 ZSL: the food-safety traceability ledger node"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate an Ed25519 key file.
    Keygen {
        /// The account id (or validator name) the key signs for.
        #[arg(long, default_value = "account")]
        account: String,
        /// The signature algorithm: `ed25519`, or `sm2` (国密 SM2 with SM3,
        /// for accounts on chains whose genesis has `sm2_accounts`;
        /// validators, witnesses and report signers are Ed25519).
        #[arg(long, value_enum, default_value_t = KeyAlg::Ed25519)]
        alg: KeyAlg,
        /// Where to write the key file, new and readable by its owner only (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Genesis files.
    Genesis {
        #[command(subcommand)]
        command: GenesisCommand,
    },
    /// Run a node.
    Node {
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Sign and submit transactions.
    Tx {
        #[command(subcommand)]
        command: TxCommand,
    },
    /// ERP-side tools: bulk import of signed records.
    Client {
        #[command(subcommand)]
        command: ClientCommand,
    },
    /// Exports in exchange formats.
    Export {
        #[command(subcommand)]
        command: ExportCommand,
    },
    /// Copy a stopped node's store (RocksDB checkpoint) to a new directory.
    Backup {
        /// The node's data directory (or its db/ directory). Stop the node first.
        #[arg(long)]
        data: PathBuf,
        /// A new directory for the backup.
        #[arg(long)]
        out: PathBuf,
    },
    /// Put a backup in place as DATA/db, for a node with `data_dir = DATA`.
    Restore {
        /// A directory written by `zsl backup`.
        #[arg(long)]
        backup: PathBuf,
        /// The node's data directory; must hold no store yet.
        #[arg(long)]
        data: PathBuf,
    },
    /// Verify an evidence bundle or a SCITT transparent statement offline (exit 0 only if every check passes),
    /// or with --consistency that a newer checkpoint extends an older one.
    Verify {
        /// The evidence bundle (JSON from GET /v1/evidence/{tx_id}), trace
        /// bundle (GET /v1/trace/{code}/evidence) or SCITT transparent
        /// statement (COSE from GET /v1/evidence/{tx_id}/scitt).
        #[arg(required_unless_present = "consistency")]
        bundle: Option<PathBuf>,
        /// The chain's genesis file: the only thing trusted.
        #[arg(long)]
        genesis: PathBuf,
        /// OLD_CHECKPOINT NEW_CHECKPOINT: signed notes (GET /v1/checkpoints/{height}).
        #[arg(long, num_args = 2, value_names = ["OLD_CHECKPOINT", "NEW_CHECKPOINT"], conflicts_with = "bundle", requires = "proof")]
        consistency: Option<Vec<PathBuf>>,
        /// The consistency proof (JSON from GET /v1/proofs/consistency).
        #[arg(long)]
        proof: Option<PathBuf>,
        /// A c2sp.org/tlog-policy file whose witness quorum the bundle's
        /// checkpoint must meet besides the validators' (adds the `witnesses` check).
        #[arg(long, conflicts_with = "consistency")]
        witness_policy: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a signed credit report (GET /v1/views/subjects/{uscc}/credit-report)
    /// against the genesis file alone; exits 2 if a check fails.
    VerifyReport {
        report: PathBuf,
        #[arg(long)]
        genesis: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Re-verify every block hash, tree root, state hash and signature from genesis.
    VerifyChain {
        /// The node's data directory (stop the node first).
        #[arg(long)]
        data: PathBuf,
        #[arg(long)]
        genesis: PathBuf,
    },
    /// Start a local devnet on 127.0.0.1 and supervise it until Ctrl-C.
    Devnet {
        #[arg(long)]
        dir: PathBuf,
        /// Fill the devnet with a realistic sample of subjects, batches and shipments.
        #[arg(long)]
        demo: bool,
        /// Validators to start, 1..=5, each a process on 127.0.0.1.
        #[arg(long, default_value_t = 3)]
        validators: usize,
        /// Port of the first node's API; node i gets PORT+i-1 (0: free ports).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Complete a 17-character USCC with its GB 32100 check character, or check an 18-character one.
    Uscc { code: String },
    /// The trace code (追溯码) that coding BATCH_ID by CODER (USCC) yields.
    TraceCode { coder: String, batch_id: String },
    /// District scores (赋码率 / 扫码率).
    Score {
        #[command(subcommand)]
        command: Option<ScoreCommand>,
        /// Ask a running node.
        #[arg(long)]
        node: Option<String>,
        /// Key file of the regulator asking (scores are theirs to read).
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
    },
}

#[derive(Subcommand)]
enum GenesisCommand {
    /// Write a genesis file with the Zhejiang region table and the zj-2024 model.
    Init {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "zsl-local")]
        chain_id: String,
        /// Key file of the provincial root regulator (repeatable).
        #[arg(long = "root-key", required = true)]
        root_keys: Vec<PathBuf>,
        /// Validator key files, in node-id order starting at 1 (repeatable).
        #[arg(long = "validator-key")]
        validator_keys: Vec<PathBuf>,
        /// RFC 3339 time of block 0 (default: now).
        #[arg(long)]
        genesis_time: Option<String>,
        /// Host part of the checkpoints' origin, `<host>/<chain id>/<genesis
        /// hash>`: a DNS name the chain's operator controls (docs/evidence.md).
        #[arg(long, default_value = ledger::spec::DEFAULT_LOG_HOST)]
        log_host: String,
        /// Accept only Ed25519 account keys: leave `sm2_accounts` out of the
        /// genesis (by default a new chain accepts 国密 SM2 account keys too).
        #[arg(long)]
        no_sm2_accounts: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum KeyAlg {
    Ed25519,
    Sm2,
}

#[derive(Subcommand)]
enum NodeCommand {
    /// Run a node from a config file.
    Run {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum TxCommand {
    /// Sign a body (JSON from FILE or stdin); fills `account`, `created_at`, `nonce`, `chain_id` when missing.
    Sign {
        #[arg(long)]
        key: PathBuf,
        /// Chain id, when the body lacks one.
        #[arg(long)]
        chain_id: Option<String>,
        file: Option<PathBuf>,
    },
    /// Submit a signed transaction (JSON from FILE or stdin).
    Submit {
        #[arg(long)]
        node: String,
        /// Wait until committed or refused.
        #[arg(long)]
        wait: bool,
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ClientCommand {
    /// Sign the rows of a CSV or JSONL file (one record body per row) and submit
    /// them in batches; resumable; refused rows go to a report (docs/erp-import.md).
    Import(import::ImportOptions),
    /// GET a path from a node, signed with a key file (RFC 9421), and print
    /// the JSON answer: what that account may read (docs/api.md, Who sees what).
    Get {
        #[arg(long)]
        node: String,
        #[arg(long)]
        key: PathBuf,
        /// The path and query, e.g. `/v1/views/subjects/{uscc}/portrait?from=…&to=…`.
        path: String,
    },
}

#[derive(Subcommand)]
enum ExportCommand {
    /// A batch's chain of custody as a GS1 EPCIS 2.0 EPCISDocument (JSON-LD),
    /// read from a node with a key file that may see the trace (docs/epcis.md).
    Epcis {
        #[arg(long)]
        node: String,
        #[arg(long)]
        key: PathBuf,
        #[arg(long)]
        trace_code: String,
        /// Where to write the document (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ScoreCommand {
    /// Run a scenario file through the real ledger and print its scores.
    Replay {
        file: PathBuf,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, default_value = "json")]
        format: String,
    },
    /// Check a score evidence file (GET /v1/scores/{district}/evidence) on
    /// another node: replay that node's chain to the block the score rests
    /// on, recompute, compare (exit 2 if a check fails).
    Verify {
        evidence: PathBuf,
        /// That node's data directory (stop the node first, or use a backup).
        #[arg(long)]
        data: PathBuf,
        /// The chain's genesis file.
        #[arg(long)]
        genesis: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    if let Err(e) = real_main() {
        eprintln!("zsl: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Keygen { account, alg, out } => {
            let k = match alg {
                KeyAlg::Ed25519 => genesis::KeyFile::generate(&account),
                KeyAlg::Sm2 => genesis::KeyFile::generate_sm2(&account),
            };
            match out {
                Some(p) => {
                    genesis::write_new_key_file(&p, &k)?;
                    println!("{}", k.public_key);
                }
                None => println!("{}", serde_json::to_string_pretty(&k)?),
            }
            Ok(())
        }
        Command::Genesis {
            command:
                GenesisCommand::Init {
                    out,
                    chain_id,
                    root_keys,
                    validator_keys,
                    genesis_time,
                    log_host,
                    no_sm2_accounts,
                },
        } => {
            let mut roots = Vec::new();
            for p in &root_keys {
                let k = genesis::KeyFile::read(p)?;
                roots.push(ledger::spec::RootRegulator {
                    id: k.account.clone(),
                    name: format!("{} (provincial regulator)", k.account),
                    public_key: k.public_key,
                });
            }
            let mut validators = Vec::new();
            for (i, p) in validator_keys.iter().enumerate() {
                let k = genesis::KeyFile::read(p)?;
                validators.push(ledger::spec::Validator {
                    node_id: i as u64 + 1,
                    name: k.account,
                    public_key: k.public_key,
                });
            }
            let mut spec = genesis::build_spec(genesis::GenesisParams {
                chain_id,
                genesis_time: genesis_time.unwrap_or_else(client::now_rfc3339),
                root_regulators: roots,
                validators,
                districts: None,
                sm2_accounts: !no_sm2_accounts,
            })?;
            spec.log_host = Some(log_host);
            spec.validate()?;
            genesis::write_json(&out, &spec)?;
            println!(
                "genesis {} written to {}",
                hex::encode(spec.hash()?),
                out.display()
            );
            Ok(())
        }
        Command::Node {
            command: NodeCommand::Run { config },
        } => run::run_node(&config),
        Command::Tx {
            command:
                TxCommand::Sign {
                    key,
                    chain_id,
                    file,
                },
        } => {
            let body = client::read_json_input(file.as_deref())?;
            let key = genesis::KeyFile::read(&key)?;
            let tx = client::sign_body(body, &key, chain_id.as_deref())?;
            println!("{}", serde_json::to_string(&tx.to_json())?);
            Ok(())
        }
        Command::Tx {
            command: TxCommand::Submit { node, wait, file },
        } => {
            let tx = client::read_json_input(file.as_deref())?;
            let (status, body) = client::submit(&node, &tx, wait)?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            if !status.is_success() {
                anyhow::bail!("the node answered {status}");
            }
            Ok(())
        }
        Command::Client {
            command: ClientCommand::Import(options),
        } => import::run(options),
        Command::Client {
            command: ClientCommand::Get { node, key, path },
        } => {
            let key = genesis::KeyFile::read(&key)?.account_key()?;
            let url = format!("{}{path}", node.trim_end_matches('/'));
            let body = client::get_json_as(&url, Some(&key))?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            Ok(())
        }
        Command::Export {
            command:
                ExportCommand::Epcis {
                    node,
                    key,
                    trace_code,
                    out,
                },
        } => {
            let key = genesis::KeyFile::read(&key)?.account_key()?;
            if !trace_code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                anyhow::bail!("--trace-code must be letters and digits, e.g. ZS…");
            }
            let url = format!(
                "{}/v1/epcis/events?trace_code={trace_code}",
                node.trim_end_matches('/')
            );
            let doc = serde_json::to_string_pretty(&client::get_json_as(&url, Some(&key))?)?;
            match out {
                Some(p) => std::fs::write(&p, doc + "\n")
                    .with_context(|| format!("writing {}", p.display()))?,
                None => println!("{doc}"),
            }
            Ok(())
        }
        Command::Backup { data, out } => {
            let m = backup::backup(&data, &out)?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
        Command::Restore { backup, data } => {
            let m = backup::restore(&backup, &data)?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
        Command::Verify {
            bundle,
            genesis,
            consistency,
            proof,
            witness_policy,
            json,
        } => {
            let ok = match (consistency.as_deref(), bundle, proof) {
                (Some([old, new]), _, Some(proof)) => {
                    verify::consistency(old, new, &proof, &genesis, json)?
                }
                (None, Some(bundle), _) => {
                    verify::bundle(&bundle, &genesis, witness_policy.as_deref(), json)?
                }
                _ => anyhow::bail!("give BUNDLE, or --consistency OLD NEW --proof P"),
            };
            if !ok {
                // 2, not 1: the files were read and a check failed.
                std::process::exit(2);
            }
            Ok(())
        }
        Command::VerifyReport {
            report,
            genesis,
            json,
        } => {
            if !verify::credit_report(&report, &genesis, json)? {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::VerifyChain { data, genesis } => {
            let spec = genesis::read_spec(&genesis)?;
            let store = ledger::store::Store::open_read_only(&data)
                .with_context(|| format!("opening {} (is the node stopped?)", data.display()))?;
            let report = ledger::verify_chain(&store, &spec)?;
            println!(
                "chain verified: {} blocks, {} transactions, head {}, tree root {}",
                report.height, report.transactions, report.head_hash, report.tree_root
            );
            Ok(())
        }
        Command::Uscc { code } => {
            let code = code.trim().to_ascii_uppercase();
            match code.len() {
                17 => {
                    let c = ledger::validate::uscc_check_char(&code)
                        .context("not GB 32100 characters (0-9, A-Y without I O S V Z)")?;
                    println!("{code}{c}");
                }
                18 => {
                    ledger::validate::check_uscc(&code)
                        .map_err(|r| anyhow::anyhow!("{}", r.message))?;
                    println!("{code}");
                }
                n => anyhow::bail!("a USCC has 18 characters (17 + check), not {n}"),
            }
            Ok(())
        }
        Command::TraceCode { coder, batch_id } => {
            println!("{}", ledger::machine::trace_code(&coder, &batch_id));
            Ok(())
        }
        Command::Devnet {
            dir,
            demo,
            validators,
            port,
        } => devnet::run(&dir, demo, validators, port),
        Command::Score {
            command:
                Some(ScoreCommand::Replay {
                    file,
                    from,
                    to,
                    format,
                }),
            ..
        } => replay::replay_command(&file, from.as_deref(), to.as_deref(), &format),
        Command::Score {
            command:
                Some(ScoreCommand::Verify {
                    evidence,
                    data,
                    genesis,
                    json,
                }),
            ..
        } => {
            if !verify::score(&evidence, &data, &genesis, json)? {
                std::process::exit(2);
            }
            Ok(())
        }
        Command::Score {
            command: None,
            node,
            key,
            from,
            to,
        } => {
            let node = node.context("give --node URL, or use `zsl score replay FILE`")?;
            let (from, to) = (
                from.context("--from is required")?,
                to.context("--to is required")?,
            );
            let key = match key {
                Some(k) => Some(genesis::KeyFile::read(&k)?.account_key()?),
                None => None,
            };
            let body = client::get_json_as(
                &format!(
                    "{}/v1/scores?from={from}&to={to}",
                    node.trim_end_matches('/')
                ),
                key.as_ref(),
            )?;
            println!("{}", serde_json::to_string_pretty(&body)?);
            Ok(())
        }
    }
}
