//! The documentation stays true: every setting and every route the binary has is documented.

use std::process::Command;

use serde_json::Value;

const CONFIGURATION: &str = include_str!("../../docs/configuration.md");
const API: &str = include_str!("../../docs/api.md");
const OPENAPI: &str = include_str!("../../docs/openapi.json");

#[test]
fn every_environment_variable_is_in_the_configuration_table() {
    let help = Command::new(support::node_binary()).arg("--help").env_clear().output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    let variables: Vec<&str> = help.split("[env: ").skip(1).map(|rest| rest.split(['=', ']']).next().unwrap()).collect();
    assert!(variables.len() > 20, "parsed the variables out of --help: {variables:?}");
    for variable in variables {
        assert!(CONFIGURATION.contains(&format!("| `{variable}` |")), "{variable} is missing from docs/configuration.md");
    }
}

#[test]
fn every_route_is_in_the_api_reference() {
    let api: Value = serde_json::from_str(OPENAPI).unwrap();
    for (path, operations) in api["paths"].as_object().unwrap() {
        for method in operations.as_object().unwrap().keys() {
            let entry = format!("`{} {path}", method.to_uppercase());
            // An alias is listed on the line of the route it stands for.
            let alias = API.lines().any(|line| line.contains(&format!("`{path}`")) && line.contains("alias"));
            assert!(API.contains(&entry) || alias, "{} {path} is missing from docs/api.md", method.to_uppercase());
        }
    }
}

#[test]
fn the_print_openapi_flag_prints_the_committed_document() {
    let output = Command::new(support::node_binary()).arg("--print-openapi").env_clear().output().unwrap();
    assert!(output.status.success());
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let committed: Value = serde_json::from_str(OPENAPI).unwrap();
    assert!(printed == committed, "docs/openapi.json is stale: `cargo run -p tributary-node -- --print-openapi > docs/openapi.json`");
}

/// The lines of one top-level resource of `template.yaml`.
fn resource_block<'a>(template: &'a str, name: &str) -> &'a str {
    let header = format!("\n  {name}:\n");
    let start = template.find(&header).unwrap_or_else(|| panic!("{name} is not in template.yaml")) + header.len();
    let rest = &template[start..];
    let end = rest
        .match_indices("\n  ")
        .find(|(index, _)| rest[index + 3..].chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map(|(index, _)| index)
        .unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn the_http_api_in_template_yaml_routes_every_route_to_the_function_that_serves_it() {
    let template = include_str!("../../template.yaml");
    let api: Value = serde_json::from_str(OPENAPI).unwrap();
    for path in api["paths"].as_object().unwrap().keys() {
        // The node's own: API Gateway's WebSocket API and Management API take their place.
        if path.contains("ws/dashboard") || path.starts_with("/@connections") {
            continue;
        }
        let resource = match support::function_for(path) {
            "tributary-activity" => "ActivityFunction",
            "tributary-ingest" => "IngestFunction",
            // The stream is also on the HTTP API, buffered, for clients that know one base URL.
            "tributary-chat" | "tributary-chat-stream" => "ChatFunction",
            _ => "AdminFunction",
        };
        // Paths with `{…}` are quoted in YAML's flow style.
        let block = resource_block(template, resource);
        assert!(
            block.contains(&format!("Path: {path},")) || block.contains(&format!("Path: \"{path}\",")),
            "{path} is not routed to {resource} in template.yaml"
        );
    }
}

/// The `<name>` of each `${AWS::StackName}-<name>` in a line of the template.
fn stack_function_names(line: &str) -> Vec<String> {
    line.split("${AWS::StackName}-").skip(1).map(|rest| rest.split([',', ' ', '\n']).next().unwrap().to_owned()).collect()
}

#[test]
fn a_stack_restart_cycles_every_function_and_may_update_each_of_them() {
    let template = include_str!("../../template.yaml");
    let mut declared: Vec<String> =
        template.lines().filter(|line| line.trim_start().starts_with("FunctionName:")).flat_map(stack_function_names).collect();
    declared.sort();
    let cycled_line = template.lines().find(|line| line.contains("TRIBUTARY_FUNCTIONS:")).expect("TRIBUTARY_FUNCTIONS in template.yaml");
    let mut cycled = stack_function_names(cycled_line);
    cycled.sort();
    assert_eq!(cycled, declared, "TRIBUTARY_FUNCTIONS must list every function of the stack");
    let mut allowed: Vec<String> = template
        .lines()
        .filter(|line| line.contains(":function:${AWS::StackName}-"))
        .flat_map(|line| line.rsplit_once(":function:").map(|(_, name)| stack_function_names(name)).unwrap_or_default())
        .collect();
    allowed.sort();
    assert_eq!(allowed, declared, "the admin function's policy must let it update every function it cycles");
}

#[test]
fn the_chat_stream_function_answers_through_a_streaming_function_url() {
    let template = include_str!("../../template.yaml");
    let block = resource_block(template, "ChatStreamFunction");
    assert!(block.contains("Binary: tributary-chat-stream"), "{block}");
    assert!(block.contains("InvokeMode: RESPONSE_STREAM"), "{block}");
    assert!(!block.contains("Type: HttpApi"), "an HTTP API integration cannot take a streamed response");
    assert!(template.contains("!GetAtt ChatStreamFunctionUrl.FunctionUrl"), "the stack gives the stream's URL");
}

/// Every error code the server can answer is in docs/api.md's error table. The codes are read from
/// the sources where errors are built: `ApiError`'s constructors (the code is the first string
/// argument, after the component for `unavailable`), the fixed codes of its named constructors,
/// the `@connections` API's own errors (`code: "…"`), and the language-model errors (`llm_…`).
#[test]
fn every_error_code_is_in_the_api_reference() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let mut sources = Vec::new();
    for folder in ["shared/src", "socket-node/src"] {
        let mut pending = vec![root.join(folder)];
        while let Some(path) = pending.pop() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    // Tests build errors of their own.
                    sources.push(text.split("#[cfg(test)]").next().unwrap().to_owned());
                }
            }
        }
    }
    // The string arguments of each call after `marker`; `code_argument` is which argument is the
    // code (counting arguments, literal or not).
    let codes_after = |text: &str, marker: &str, code_argument: usize| -> Vec<String> {
        text.match_indices(marker)
            .filter_map(|(at, _)| {
                // The call's arguments, to the end of the statement (an argument may call something).
                let call = &text[at + marker.len()..];
                let call = &call[..call.find(';').unwrap_or(call.len())];
                let arguments: Vec<&str> = call.split(',').map(str::trim).collect();
                let argument = arguments.get(code_argument)?;
                argument.strip_prefix('"')?.split('"').next().map(str::to_owned)
            })
            .collect()
    };
    let mut codes = std::collections::BTreeSet::new();
    for text in &sources {
        for (marker, code_argument) in [
            ("ApiError::new(", 1),
            ("Self::new(StatusCode::", 1),
            ("ApiError::bad_request(", 0),
            ("ApiError::forbidden(", 0),
            ("ApiError::unavailable(", 1),
        ] {
            codes.extend(codes_after(text, marker, code_argument));
        }
        // The @connections API's errors and the language-model errors name their codes as literals.
        for (at, _) in text.match_indices("code: \"").chain(text.match_indices("\"llm_")) {
            let rest = &text[at..];
            codes.insert(rest[rest.find('"').unwrap() + 1..].split('"').next().unwrap().to_owned());
        }
    }
    codes.retain(|code| code.chars().all(|c| c.is_ascii_lowercase() || c == '_') && code.contains(|c: char| c.is_ascii_lowercase()));
    assert!(codes.len() > 25 && codes.contains("store_unavailable") && codes.contains("llm_timeout"), "read the codes: {codes:?}");
    let table = API.split("| Status | Codes | When |").nth(1).unwrap().split("\n\n").next().unwrap();
    let missing: Vec<&String> = codes.iter().filter(|code| !table.contains(&format!("`{code}`"))).collect();
    assert!(missing.is_empty(), "error codes missing from docs/api.md's error table: {missing:?}");
}
