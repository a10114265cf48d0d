//! Chat, in this process on the embedded store with no provider:
//!
//! * the time to build deep mode's context (evidence gathered, fitted to the budget, rendered, with
//!   its sources and subgraph) on a graph of at least 10,000 nodes, beside two references in the
//!   same run: the store's search alone and one lineage walk alone, the two reads deep mode makes the
//!   most of;
//! * the question set of `tests/fixtures/chat` answered by the extractive provider, graded, beside a
//!   floor: the store's eight best statements for the question's words (BM25 alone), graded alike.

use std::time::{Duration, Instant};

use anyhow::ensure;
use tributary_core::chat::questions::QuestionSet;
use tributary_core::chat::{ChatContext, ChatRequest, Mode, evidence};
use tributary_core::knowledge::{self, IngestFile, IngestRequest, LineageDirection};
use tributary_core::lineage::search::query_terms;

use crate::ingest::{embedded, warehouse_file};

fn percentile(samples: &mut [f64], share: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let index = ((samples.len() as f64 * share).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[index]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Prints the chat section of the report: `rounds` passes over a set of questions.
pub async fn print_chat(rounds: usize) -> anyhow::Result<()> {
    let folder = tempfile::tempdir()?;
    let state = embedded(folder.path()).await?;
    let files: Vec<IngestFile> = (0..10)
        .map(|file| IngestFile { filename: format!("wh{file:02}.sql"), content: warehouse_file(file, 50 * 1024).into_bytes() })
        .collect();
    let result = knowledge::ingest(&state, IngestRequest { project_id: "default".into(), dialect: "postgresql".into(), files })
        .await
        .map_err(|error| anyhow::anyhow!("{}", error.body().detail))?;
    let nodes = result.total_nodes_created;
    ensure!(nodes >= 10_000, "the benchmark graph has {nodes} nodes, fewer than 10,000");
    let budget = state.settings.chat.chat_context_budget_chars as usize;

    let questions = [
        "What feeds gold.revenue_f3_u10?",
        "What depends on raw.orders_f1_u5?",
        "Describe staging.orders_f7_u40",
        "where does the revenue of f5_u2 come from? gold.revenue_f5_u2",
        "What is in the database?",
        "customer revenue by order date",
        "what feeds gold.revenue_f2_u3 and gold.daily_f2_u3?",
        "describe costumers_f4_u9",
        "where does revenue in gold.revenue_f3_u10 come from?",
        "how is average calculated",
    ];
    let (mut deep, mut search, mut walk) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_question: Vec<Vec<f64>> = vec![Vec::new(); questions.len()];
    for _ in 0..rounds {
        for (index, question) in questions.iter().enumerate() {
            let started = Instant::now();
            let mut gathered = evidence::gather(&state, Mode::Deep, "default", question, Vec::new()).await?;
            gathered.fit(budget);
            let context = gathered.render();
            let (sources, graph) = (gathered.sources(), gathered.graph());
            deep.push(ms(started.elapsed()));
            per_question[index].push(ms(started.elapsed()));
            std::hint::black_box((context, sources, graph));

            let started = Instant::now();
            std::hint::black_box(state.stores.lineage.search_chunks("default", &query_terms(question), 8).await?);
            search.push(ms(started.elapsed()));
        }
        let started = Instant::now();
        std::hint::black_box(knowledge::lineage(&state, "default", "gold.revenue_f3_u10", LineageDirection::Both, 4).await?);
        walk.push(ms(started.elapsed()));
    }
    println!(
        "## Chat: deep mode's context (embedded SQLite store, in process, no provider)\n\nA graph of {nodes} nodes ({} edges); {} questions, {rounds} rounds ({} contexts); budget {budget} characters:\n",
        result.total_edges_created,
        questions.len(),
        deep.len()
    );
    println!("| What | p50 | p99 | max |\n| --- | --- | --- | --- |");
    for (label, samples) in [
        ("Tributary: deep context (search, names, lineage both ways, fit, render, sources)", &mut deep),
        ("Reference: the store's search alone (8 hits)", &mut search),
        ("Reference: one lineage walk alone (both ways, 4 steps)", &mut walk),
    ] {
        let (p50, p99, max) = (percentile(samples, 0.5), percentile(samples, 0.99), percentile(samples, 1.0));
        println!("| {label} | {p50:.2} ms | {p99:.2} ms | {max:.2} ms |");
    }
    println!("\nDeep context per question:\n\n| Question | p50 | p99 |\n| --- | --- | --- |");
    for (question, samples) in questions.iter().zip(&mut per_question) {
        println!("| {question} | {:.2} ms | {:.2} ms |", percentile(samples, 0.5), percentile(samples, 0.99));
    }
    println!();
    Ok(())
}

/// Prints the question set section: each question asked `rounds` times (the first answer graded).
pub async fn print_questions(rounds: usize) -> anyhow::Result<()> {
    let set = QuestionSet::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/chat"))?;
    let folder = tempfile::tempdir()?;
    let state = embedded(folder.path()).await?;
    for (name, warehouse) in &set.warehouses {
        let files =
            set.files(name)?.into_iter().map(|(filename, content)| IngestFile { filename, content: content.into_bytes() }).collect();
        knowledge::ingest(&state, IngestRequest { project_id: name.clone(), dialect: warehouse.dialect.clone(), files })
            .await
            .map_err(|error| anyhow::anyhow!("{name}: {}", error.body().detail))?;
    }
    // Per mode: (right, floor right, asked, latencies).
    let mut modes: std::collections::BTreeMap<String, (usize, usize, usize, Vec<f64>)> = Default::default();
    let mut wrong = Vec::new();
    for question in &set.questions {
        let mode = Mode::parse(&question.mode).ok_or_else(|| anyhow::anyhow!("no mode {}", question.mode))?;
        let entry = modes.entry(question.mode.clone()).or_default();
        for round in 0..rounds.max(1) {
            let request = ChatRequest {
                query: question.question.clone(),
                model: None,
                session_id: None,
                history: Vec::new(),
                context: Some(ChatContext { project_id: Some(question.warehouse.clone()) }),
            };
            let started = Instant::now();
            let answer =
                tributary_core::chat::ask(&state, mode, request).await.map_err(|error| anyhow::anyhow!("{}", error.body().detail))?;
            entry.3.push(ms(started.elapsed()));
            if round == 0 {
                let missing = question.missing(&answer.response);
                if missing.is_empty() {
                    entry.0 += 1;
                } else {
                    wrong.push(format!("[{}] {} — missing {}", question.mode, question.question, missing.join(", ")));
                }
            }
        }
        let terms = query_terms(&question.question);
        let floor = state.stores.lineage.search_chunks(&question.warehouse, &terms, 8).await?;
        let floor_text: Vec<String> = floor
            .iter()
            .map(|hit| format!("- {} {} {}", hit.chunk.statement_kind, hit.chunk.object.clone().unwrap_or_default(), hit.chunk.text))
            .collect();
        entry.1 += usize::from(question.missing(&floor_text.join("\n")).is_empty());
        entry.2 += 1;
    }
    println!(
        "## Chat: the question set ({} questions over {} warehouses, extractive provider, embedded store, in process)\n",
        set.questions.len(),
        set.warehouses.len()
    );
    println!("| Mode | Tributary right | Floor right (BM25's 8 statements) | p50 | p99 |\n| --- | --- | --- | --- | --- |");
    let (mut right, mut floor, mut asked) = (0, 0, 0);
    for (mode, (mode_right, mode_floor, mode_asked, latencies)) in &mut modes {
        let (p50, p99) = (percentile(latencies, 0.5), percentile(latencies, 0.99));
        println!(
            "| {mode} | {mode_right} of {mode_asked} ({:.0} %) | {mode_floor} of {mode_asked} ({:.0} %) | {p50:.2} ms | {p99:.2} ms |",
            100.0 * *mode_right as f64 / *mode_asked as f64,
            100.0 * *mode_floor as f64 / *mode_asked as f64
        );
        (right, floor, asked) = (right + *mode_right, floor + *mode_floor, asked + *mode_asked);
    }
    println!("| all | {right} of {asked} | {floor} of {asked} | | |\n");
    if !wrong.is_empty() {
        println!("Answered wrong:\n");
        for line in wrong {
            println!("- {line}");
        }
        println!();
    }
    Ok(())
}
