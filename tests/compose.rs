//! `docker-compose.yml` read as text (no Docker engine is needed): what would stop
//! `docker compose --profile observability up` or leave a process unwatched.

// Tests fail by panicking.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;

fn compose() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
        .expect("docker-compose.yml")
}

/// Each service's name and the host ports it publishes (`ports: ["HOST:CONTAINER"]`).
fn published(text: &str) -> Vec<(String, u16)> {
    let mut service = String::new();
    let mut out = Vec::new();
    for line in text.lines() {
        if let Some(name) = line
            .strip_prefix("  ")
            .filter(|l| !l.starts_with(' '))
            .and_then(|l| l.strip_suffix(':'))
        {
            service = name.to_string();
        }
        if let Some(list) = line.trim().strip_prefix("ports:") {
            for mapping in list.trim().trim_matches(['[', ']']).split(',') {
                let mapping = mapping.trim().trim_matches('"');
                let host = mapping.split(':').next().unwrap_or_default();
                out.push((service.clone(), host.parse().expect("a host port")));
            }
        }
    }
    out
}

#[test]
fn no_two_services_publish_the_same_host_port() {
    let ports = published(&compose());
    assert!(
        ports.iter().any(|(s, p)| s == "web" && *p == 3000),
        "{ports:?}"
    );
    assert!(ports.iter().any(|(s, _)| s == "grafana"), "{ports:?}");
    let mut by_port: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for (service, port) in &ports {
        by_port.entry(*port).or_default().push(service);
    }
    for (port, services) in by_port {
        assert_eq!(
            services.len(),
            1,
            "host port {port} is published by {services:?}"
        );
    }
}

#[test]
fn prometheus_scrapes_the_gateway_and_every_subgraph() {
    let text = compose();
    let scrape = text
        .split("scrape_configs:")
        .nth(1)
        .expect("a Prometheus scrape configuration");
    assert!(scrape.contains("- gateway:4000"), "{scrape}");
    for s in shop::subgraphs::SUBGRAPHS {
        let target = format!("- {}:{}", s.name, shop::subgraphs::default_port(s.name));
        assert!(scrape.contains(&target), "{target} is not scraped");
        assert!(
            text.contains(&format!("\n  {}:\n", s.name)),
            "{} is not a service",
            s.name
        );
    }
}
