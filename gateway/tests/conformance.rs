//! The federation conformance corpus: one file per behaviour in `conformance/cases/`.
//!
//! A case file has sections, each starting with a line `=== <kind> [name]`:
//! - `subgraph <name>`: the subgraph's SDL (federation directives need no `@link`);
//! - `data <name>`: that subgraph's fixture data (see `conformance/fixture.rs`);
//! - `down <name>`: the subgraph is unreachable;
//! - `operation`, `variables` (JSON), `response` (the exact expected JSON, in order);
//! - `fetches` (optional JSON `{"subgraph": n}`): how many requests each subgraph gets;
//! - `supergraph` (optional): a supergraph as another composition tool wrote it, served
//!   as is (subgraph URLs replaced by the fixtures'), instead of composing the subgraphs;
//! - `labels` (optional): progressive-override labels switched on, comma-separated;
//! - `operation_name` (optional): which operation of the document to run;
//! - `slow <name>`: that subgraph answers after the given milliseconds;
//! - `timeout <name>`: the gateway's timeout for that subgraph, in milliseconds;
//! - `synthetic <supergraph>`: the subgraphs of that differential supergraph
//!   (`differential/supergraphs/<supergraph>/`), served by synthetic subgraphs (see
//!   `differential/synthetic.rs`); cases recorded from differential runs use it;
//! - `caller` (optional): the request is signed in, with the space-separated scopes
//!   given (none: signed in without scopes); without it the request is anonymous.
//!
//! Lines starting with `#` before the first section are comments: cases pinning a subtle
//! rule cite the spec section there.
//!
//! Every case also snapshots its query plan (`snapshots/conformance__<case>.snap`).

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "conformance/fixture.rs"]
mod fixture;
// The differential tests' synthetic subgraphs, for cases recorded from those runs.
#[allow(dead_code)]
#[path = "differential/synthetic.rs"]
mod synthetic;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};

const LINK: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.8\", import: [\"@key\", \"@shareable\", \"@external\", \"@requires\", \"@provides\", \"@inaccessible\", \"@override\", \"@tag\", \"@interfaceObject\", \"@context\", \"@fromContext\", \"@authenticated\", \"@requiresScopes\", \"@policy\"])\n";

#[derive(Default)]
struct Case {
    subgraphs: Vec<(String, String)>,
    data: BTreeMap<String, Value>,
    down: Vec<String>,
    operation: String,
    variables: Option<Value>,
    response: String,
    fetches: Option<Value>,
    supergraph: Option<String>,
    labels: Vec<String>,
    operation_name: Option<String>,
    slow: BTreeMap<String, u64>,
    timeouts: BTreeMap<String, u64>,
    caller: Option<Vec<String>>,
    synthetic: Option<String>,
}

fn parse(name: &str, text: &str) -> Case {
    let mut case = Case::default();
    let mut sections: Vec<(String, String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(head) = line.strip_prefix("=== ") {
            let mut parts = head.split_whitespace();
            let kind = parts.next().unwrap_or_default().to_string();
            let arg = parts.next().unwrap_or_default().to_string();
            sections.push((kind, arg, String::new()));
        } else if let Some((_, _, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    let json = |what: &str, body: &str| -> Value {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {what} is not JSON: {e}"))
    };
    for (kind, arg, body) in sections {
        match kind.as_str() {
            "subgraph" => case.subgraphs.push((arg, body)),
            "data" => {
                case.data.insert(arg, json("data", &body));
            }
            "down" => case.down.push(arg),
            "synthetic" => case.synthetic = Some(arg),
            "operation" => case.operation = body,
            "variables" => case.variables = Some(json("variables", &body)),
            "response" => case.response = body,
            "fetches" => case.fetches = Some(json("fetches", &body)),
            "supergraph" => case.supergraph = Some(body),
            "operation_name" => case.operation_name = Some(body.trim().to_string()),
            "slow" => {
                case.slow
                    .insert(arg, body.trim().parse().expect("slow: milliseconds"));
            }
            "timeout" => {
                case.timeouts
                    .insert(arg, body.trim().parse().expect("timeout: milliseconds"));
            }
            "caller" => case.caller = Some(body.split_whitespace().map(str::to_string).collect()),
            "labels" => {
                case.labels = body
                    .split(',')
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            }
            other => panic!("{name}: unknown section {other}"),
        }
    }
    case
}

async fn serve_fixture(fixture: fixture::Fixture, delay_ms: u64) -> (String, Arc<Mutex<usize>>) {
    let fixture = Arc::new(fixture);
    let count = Arc::new(Mutex::new(0usize));
    let counter = count.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |Json(body): Json<Value>| {
            let (fixture, counter) = (fixture.clone(), counter.clone());
            async move {
                *counter.lock().unwrap() += 1;
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                Json(fixture.execute(&body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

async fn run_case(name: &str) {
    let path = format!(
        "{}/tests/conformance/cases/{name}.case",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let case = parse(name, &text);
    let mut sources = Vec::new();
    let mut counters = BTreeMap::new();
    if let Some(dir) = &case.synthetic {
        let dir = format!(
            "{}/tests/differential/supergraphs/{dir}",
            env!("CARGO_MANIFEST_DIR")
        );
        let subgraphs = synthetic::read_dir(std::path::Path::new(&dir));
        let urls = synthetic::start_counting(&subgraphs).await;
        for ((name, sdl), (url, count)) in subgraphs.into_iter().zip(urls) {
            counters.insert(name.clone(), count);
            sources.push(SubgraphSource { name, url, sdl });
        }
    }
    for (sub, sdl) in &case.subgraphs {
        let url = if case.down.contains(sub) {
            let dead = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            format!("http://{dead}/graphql")
        } else {
            let data = case.data.get(sub).cloned().unwrap_or(Value::Null);
            let (url, count) = serve_fixture(
                fixture::Fixture::new(sdl, data),
                case.slow.get(sub).copied().unwrap_or(0),
            )
            .await;
            counters.insert(sub.clone(), count);
            url
        };
        sources.push(SubgraphSource {
            name: sub.clone(),
            url,
            sdl: format!("{LINK}{sdl}"),
        });
    }
    let supergraph = match &case.supergraph {
        Some(sdl) => {
            let mut sg = Supergraph::parse(sdl).unwrap_or_else(|e| panic!("{name}: {e}"));
            for s in &sources {
                assert!(
                    sg.set_url(&s.name, &s.url),
                    "{name}: no subgraph {}",
                    s.name
                );
            }
            sg
        }
        None => Supergraph::parse(&compose(&sources).unwrap_or_else(|e| panic!("{name}: {e}")))
            .unwrap_or_else(|e| panic!("{name}: {e}")),
    };
    let options = GatewayOptions {
        override_labels: case.labels.clone(),
        subgraph_timeouts: case
            .timeouts
            .iter()
            .map(|(k, v)| (k.clone(), std::time::Duration::from_millis(*v)))
            .collect(),
        ..GatewayOptions::default()
    };
    let gateway = Gateway::new(supergraph, options);
    if let Ok(prepared) = gateway
        .prepare(&case.operation, case.operation_name.as_deref())
        .await
    {
        insta::assert_snapshot!(name, prepared.plan.to_string());
    }
    let req = GraphQLRequest {
        query: Some(case.operation.clone()),
        operation_name: case.operation_name.clone(),
        variables: case.variables.clone().and_then(|v| v.as_object().cloned()),
        ..Default::default()
    };
    let meta = shop_gateway::pipeline::RequestMeta {
        principal: case.caller.clone().map(|scopes| shop_kit::auth::Principal {
            user_id: "caller".into(),
            roles: Vec::new(),
            scopes,
            issuer: "conformance".into(),
            expires_at: None,
        }),
        ..Default::default()
    };
    let resp = gateway.execute(req, &meta).await;
    let expected: Value = serde_json::from_str(&case.response)
        .unwrap_or_else(|e| panic!("{name}: response is not JSON: {e}"));
    let mut actual = serde_json::to_value(&resp).unwrap();
    blank_wildcards(&mut actual, &expected);
    let actual = serde_json::to_string_pretty(&actual).unwrap();
    let expected = serde_json::to_string_pretty(&expected).unwrap();
    assert!(
        actual == expected,
        "{name}: response differs\n--- expected\n{expected}\n--- actual\n{actual}"
    );
    if let Some(fetches) = case.fetches {
        let got: BTreeMap<String, usize> = counters
            .iter()
            .map(|(k, v)| (k.clone(), *v.lock().unwrap()))
            .collect();
        let want: BTreeMap<String, usize> = serde_json::from_value(fetches).unwrap();
        assert_eq!(got, want, "{name}: requests per subgraph");
    }
}

/// Where the expected response says `"<any>"`, the actual value is not compared.
fn blank_wildcards(actual: &mut Value, expected: &Value) {
    match (actual, expected) {
        (a, Value::String(s)) if s == "<any>" => *a = Value::String(s.clone()),
        (Value::Object(a), Value::Object(e)) => {
            for (k, ev) in e {
                if let Some(av) = a.get_mut(k) {
                    blank_wildcards(av, ev);
                }
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            for (av, ev) in a.iter_mut().zip(e) {
                blank_wildcards(av, ev);
            }
        }
        _ => {}
    }
}

macro_rules! cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                run_case(stringify!($name)).await;
            }
        )*
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

/// A case file missing from the list below would never run.
#[test]
fn every_case_file_is_listed() {
    let dir = format!("{}/tests/conformance/cases", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".case").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = LISTED.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(files, listed);
}

cases! {
    a_request_shared_by_two_entity_types_is_guarded_by_their_common_condition,
    an_owner_fetch_for_left_out_fragments_only_is_never_sent,
    a_fragment_moved_to_the_interface_object_still_gets_its_concrete_type,
    two_fields_below_a_provided_entity_share_one_fetch_of_the_parent,
    a_context_read_from_the_fetched_entity_itself_needs_no_second_fetch,
    a_context_argument_selected_twice_in_one_fetch_is_one_variable,
    a_field_of_another_interface_object_does_not_wait_for_the_owner,
    a_fragment_field_of_the_interface_object_is_asked_as_the_interface_field,
    a_field_riding_in_the_parent_entity_fetch_finds_the_key_where_it_is_asked,
    a_fetch_under_two_variable_conditions_runs_only_when_both_hold,
    a_fetch_asked_for_only_under_constant_conditions_is_never_sent,
    a_field_below_a_provided_entity_rides_in_the_parent_entity_fetch,
    a_client_alias_over_fields_of_different_subgraph_types_is_kept,
    a_custom_scalar_passes_through_unchanged,
    a_cyclic_fragment_is_a_validation_error,
    a_deprecated_field_can_still_be_queried,
    a_down_entity_subgraph_nulls_only_its_fields,
    a_down_subgraph_deep_in_a_chain_nulls_only_below_it,
    a_down_subgraph_leaves_the_other_root_fields,
    a_field_non_null_in_one_member_and_nullable_in_another_is_aliased_for_the_subgraph,
    a_field_of_an_input_type_missing_elsewhere_cannot_be_sent,
    a_fragment_spread_on_the_root_is_expanded,
    a_fragment_used_twice_merges_with_fields,
    a_list_of_lists_of_values_passes_through,
    a_list_variable_accepts_a_single_value,
    a_missing_required_variable_is_a_request_error,
    a_mutation_with_an_input_object_variable,
    a_named_fragment_on_a_union_member,
    a_non_null_entity_field_missing_bubbles_to_the_nullable_parent,
    a_null_abstract_field_stays_null,
    a_null_bubbles_to_the_nearest_nullable_parent,
    a_null_in_a_non_null_chain_nulls_data,
    a_null_item_in_a_list_of_non_null_items_names_the_item,
    a_null_list_item_reports_every_null_item_not_only_the_first,
    a_null_reference_needs_no_entity_fetch,
    a_null_variable_reaches_the_subgraph_as_null,
    a_nullable_list_item_absorbs_a_non_null_error,
    a_reference_only_key_still_feeds_the_owner,
    a_requires_field_of_the_root_subgraph_fetches_its_input_first,
    a_requires_whose_input_has_a_requires_runs_in_dependency_order,
    a_root_field_error_in_a_non_null_root_nulls_data,
    a_root_field_error_in_one_subgraph_keeps_the_other_subgraph,
    a_shareable_entity_field_comes_from_the_current_subgraph,
    a_shareable_field_joins_the_fetch_already_going_to_that_subgraph,
    a_shareable_root_field_is_fetched_once,
    a_shared_root_field_goes_to_the_subgraph_that_has_its_whole_selection,
    a_shared_root_field_no_subgraph_has_whole_is_fetched_from_each_and_merged,
    a_slow_subgraph_within_its_timeout_answers,
    a_subgraph_field_error_keeps_its_path,
    a_subgraph_slower_than_its_own_timeout_leaves_partial_data,
    a_supergraph_from_another_composer_hides_inaccessible_fields,
    a_supergraph_from_another_composer_is_served_as_is,
    a_syntax_error_is_a_parse_failure,
    a_type_condition_that_does_not_match_adds_nothing,
    a_value_type_field_of_another_subgraph_is_fetched_through_the_entity_above,
    a_value_type_shared_by_two_subgraphs_is_read_where_it_is,
    a_variable_default_reaches_an_entity_fetch,
    a_variable_of_the_wrong_type_is_a_request_error,
    aliases_select_one_field_with_different_arguments,
    an_aliased_entity_field_keeps_its_alias,
    an_aliased_root_field_is_followed_by_its_alias,
    an_authenticated_type_guards_every_field_returning_it,
    an_empty_list_of_an_interface_needs_no_entity_fetch,
    an_entity_chain_through_four_subgraphs,
    an_entity_fetch_only_sends_objects_of_its_type,
    an_entity_field_error_is_repathed_to_the_client_position,
    an_entity_whose_key_only_a_third_subgraph_knows_is_reached_through_it,
    an_entity_with_a_null_key_and_a_non_null_field_nulls_only_itself,
    an_entity_with_a_null_key_is_skipped_and_its_siblings_are_fetched,
    an_entity_with_a_null_nested_key_field_is_skipped,
    an_enum_literal_argument_reaches_the_subgraph,
    an_error_in_one_mutation_does_not_stop_the_next,
    an_inaccessible_enum_value_from_a_subgraph_becomes_null_with_an_error,
    an_inaccessible_field_cannot_be_queried,
    an_inaccessible_key_field_is_hidden_but_used_for_planning,
    an_inaccessible_type_is_absent_from_introspection,
    an_int_key_keeps_its_type,
    an_interface_field_behind_a_requires_in_one_implementation_gets_its_input,
    an_interface_field_external_in_one_implementation_is_fetched_from_its_owner,
    an_interface_field_overridden_in_one_implementation_comes_from_the_overriding_subgraph,
    an_interface_field_overridden_under_a_label_moves_only_when_the_label_is_on,
    an_interface_field_overridden_under_a_label_stays_while_the_label_is_off,
    an_interface_list_field_split_per_type_keeps_its_list_levels,
    an_interface_object_field_keeps_the_concrete_type_for_later_fragments,
    an_interface_object_root_field_with_fragments_on_each_type,
    an_object_of_an_inaccessible_type_becomes_null_with_an_error,
    an_object_without_a_selection_set_is_rejected,
    an_unauthorized_field_from_another_subgraph_is_not_fetched,
    an_unauthorized_mutation_does_not_run,
    an_unknown_argument_is_a_validation_error,
    an_unknown_entity_resolves_to_null,
    an_unknown_field_is_a_validation_error_with_location,
    an_unknown_operation_name_is_a_request_error,
    argument_defaults_from_the_schema_reach_the_subgraph,
    authenticated_fields_are_null_with_an_error_for_anonymous_callers,
    authenticated_fields_are_served_to_signed_in_callers,
    compound_key_is_sent_whole,
    conflicting_fields_under_one_response_key_are_rejected,
    consecutive_mutations_of_one_subgraph_share_a_fetch,
    deep_nesting_in_one_subgraph_is_one_fetch,
    defer_is_rejected_not_mis_executed,
    deprecations_and_descriptions_reach_introspection,
    entity_chain_across_three_subgraphs_and_back,
    entity_fields_from_another_subgraph,
    entity_fields_of_a_nested_list_in_an_entity_list,
    errors_in_several_list_items_each_keep_their_index,
    field_order_follows_the_request_across_fragments_and_subgraphs,
    fields_come_back_in_requested_order,
    fields_with_one_response_key_merge,
    fragments_on_abstract_types_apply_by_runtime_type,
    fragments_on_an_entity_split_across_subgraphs,
    fragments_on_the_interface_and_on_a_member_merge,
    from_context_reads_each_ancestors_value,
    from_context_uses_the_nearest_carrier,
    from_context_value_reaches_another_subgraph_entity,
    include_false_drops_an_entity_field,
    include_true_fetches_the_entity_field,
    a_skipped_root_field_of_another_subgraph_sends_no_request,
    a_skip_default_of_true_sends_no_request,
    a_fetch_with_one_unconditioned_field_is_sent_whatever_the_condition,
    fields_under_the_same_condition_share_the_skipped_fetch,
    a_fetch_left_out_by_constant_conditions_is_never_sent,
    a_requires_field_left_out_fetches_neither_it_nor_its_inputs,
    a_requires_field_included_fetches_its_inputs_first,
    include_true_on_an_inline_fragment_keeps_its_fields,
    input_objects_enums_and_lists_reach_the_subgraph,
    input_types_keep_only_fields_every_subgraph_has,
    interface_fields_of_implementations_in_other_subgraphs,
    interface_fields_shared_by_all_implementations_need_no_fragment,
    interface_object_adds_a_field_to_every_implementation,
    interface_object_field_inside_a_type_condition,
    interface_object_field_with_arguments,
    interface_object_fields_only_need_no_owner_fetch,
    interface_object_on_a_single_concrete_field,
    interface_object_root_field_learns_the_concrete_type,
    introspection_and_data_in_one_request,
    introspection_hides_federation_machinery,
    introspection_of_an_entity_lists_fields_of_every_subgraph,
    introspection_shows_the_api_schema,
    lists_of_lists_of_entities,
    missing_scopes_remove_only_the_guarded_fields,
    mutations_of_two_subgraphs_alternate_in_order,
    mutations_run_in_order_with_their_own_follow_ups,
    named_and_inline_fragments_are_expanded,
    nested_key_selects_the_nested_fields,
    nested_type_conditions_on_interface_inside_union,
    no_entity_fetch_when_nothing_is_at_the_path,
    one_entity_field_under_two_aliases,
    only_introspection_needs_no_subgraph,
    only_typename_at_the_root_needs_no_subgraph,
    output_enum_values_are_the_union_of_the_subgraphs,
    override_does_not_move_other_fields_of_the_type,
    override_keeps_a_key_field_usable_in_the_old_subgraph,
    override_label_off_keeps_the_field_in_the_old_subgraph,
    override_label_on_moves_the_field,
    override_labels_move_only_their_own_fields,
    override_moves_a_field_to_the_overriding_subgraph,
    override_of_a_root_field_sends_it_to_the_new_subgraph,
    override_percent_0_never_moves_the_field,
    override_percent_100_always_moves_the_field,
    policy_fields_fail_closed_without_a_policy_evaluator,
    provided_and_unprovided_fields_together,
    provides_a_nested_selection,
    provides_avoids_an_extra_fetch,
    provides_on_a_list_field_covers_every_item,
    provides_only_covers_the_provided_fields,
    recorded_basic_entities_0,
    recorded_basic_entities_1,
    recorded_basic_entities_2,
    recorded_basic_entities_3,
    recorded_compound_keys_0,
    recorded_compound_keys_1,
    recorded_compound_keys_2,
    recorded_compound_keys_3,
    recorded_deep_value_types_0,
    recorded_deep_value_types_1,
    recorded_deep_value_types_2,
    recorded_deep_value_types_3,
    recorded_entity_interface_0,
    recorded_entity_interface_1,
    recorded_entity_interface_2,
    recorded_entity_interface_3,
    recorded_enum_values_split_0,
    recorded_enum_values_split_1,
    recorded_enum_values_split_2,
    recorded_enum_values_split_3,
    recorded_field_type_differs_0,
    recorded_field_type_differs_1,
    recorded_field_type_differs_2,
    recorded_field_type_differs_3,
    recorded_inaccessible_values_0,
    recorded_inaccessible_values_1,
    recorded_inaccessible_values_2,
    recorded_inaccessible_values_3,
    recorded_interface_field_external_0,
    recorded_interface_field_external_1,
    recorded_interface_field_external_2,
    recorded_interface_field_external_3,
    recorded_interface_field_lists_0,
    recorded_interface_field_lists_1,
    recorded_interface_field_lists_2,
    recorded_interface_field_lists_3,
    recorded_interface_field_override_0,
    recorded_interface_field_override_1,
    recorded_interface_field_override_2,
    recorded_interface_field_override_3,
    recorded_interface_list_override_0,
    recorded_interface_list_override_1,
    recorded_interface_list_override_2,
    recorded_interface_list_override_3,
    recorded_interface_object_twice_0,
    recorded_interface_object_twice_1,
    recorded_interface_object_twice_2,
    recorded_interface_object_twice_3,
    recorded_interface_partial_implementations_0,
    recorded_interface_partial_implementations_1,
    recorded_interface_partial_implementations_2,
    recorded_interface_partial_implementations_3,
    recorded_multi_hop_chain_0,
    recorded_multi_hop_chain_1,
    recorded_multi_hop_chain_2,
    recorded_multi_hop_chain_3,
    recorded_multi_hop_keys_0,
    recorded_multi_hop_keys_1,
    recorded_multi_hop_keys_2,
    recorded_multi_hop_keys_3,
    recorded_nested_abstract_0,
    recorded_nested_abstract_1,
    recorded_nested_abstract_2,
    recorded_nested_abstract_3,
    recorded_null_keys_0,
    recorded_null_keys_1,
    recorded_null_keys_2,
    recorded_null_keys_3,
    recorded_override_and_provides_0,
    recorded_override_and_provides_1,
    recorded_override_and_provides_2,
    recorded_override_and_provides_3,
    recorded_progressive_override_0,
    recorded_progressive_override_1,
    recorded_progressive_override_2,
    recorded_progressive_override_3,
    recorded_provides_nested_0,
    recorded_provides_nested_1,
    recorded_provides_nested_2,
    recorded_provides_nested_3,
    recorded_reference_only_root_0,
    recorded_reference_only_root_1,
    recorded_reference_only_root_2,
    recorded_reference_only_root_3,
    recorded_requires_arguments_0,
    recorded_requires_arguments_1,
    recorded_requires_arguments_2,
    recorded_requires_arguments_3,
    recorded_requires_chain_0,
    recorded_requires_chain_1,
    recorded_requires_chain_2,
    recorded_requires_chain_3,
    recorded_requires_list_items_0,
    recorded_requires_list_items_1,
    recorded_requires_list_items_2,
    recorded_requires_list_items_3,
    requires_list_items_next_to_a_skipped_requiring_sibling,
    recorded_requires_same_subgraph_0,
    recorded_requires_same_subgraph_1,
    recorded_requires_same_subgraph_2,
    recorded_requires_same_subgraph_3,
    recorded_shared_root_fields_0,
    recorded_shared_root_fields_1,
    recorded_shared_root_fields_2,
    recorded_shared_root_fields_3,
    recorded_shared_value_root_0,
    recorded_shared_value_root_1,
    recorded_shared_value_root_2,
    recorded_shared_value_root_3,
    recorded_subgraph_cycle_0,
    recorded_subgraph_cycle_1,
    recorded_subgraph_cycle_2,
    recorded_subgraph_cycle_3,
    recorded_type_extension_0,
    recorded_type_extension_1,
    recorded_type_extension_2,
    recorded_type_extension_3,
    recorded_union_across_subgraphs_0,
    recorded_union_across_subgraphs_1,
    recorded_union_across_subgraphs_2,
    recorded_union_across_subgraphs_3,
    recorded_union_inaccessible_member_0,
    recorded_union_inaccessible_member_1,
    recorded_union_inaccessible_member_2,
    recorded_union_inaccessible_member_3,
    recorded_value_type_elsewhere_0,
    recorded_value_type_elsewhere_1,
    recorded_value_type_elsewhere_2,
    recorded_value_type_elsewhere_3,
    reference_only_key_plans_through_the_owner,
    required_scopes_are_any_of_all_of,
    requires_and_a_plain_field_from_the_same_subgraph_share_a_fetch,
    requires_fetches_the_required_fields_first,
    requires_fields_the_client_also_asked_for_are_returned_once,
    requires_for_every_entity_in_a_list,
    requires_inputs_from_a_third_subgraph_are_fetched_first,
    requires_on_a_field_with_arguments,
    requires_on_a_list_field_sends_each_item,
    requires_sends_the_required_values_in_the_representation,
    requires_with_a_type_condition_sends_its_fields_only_for_that_type,
    requires_with_an_argument_and_the_same_argument_from_the_client,
    requires_with_an_argument_from_a_third_subgraph,
    requires_with_an_argument_nested_in_an_object,
    requires_with_an_argument_while_the_client_asks_another_argument,
    requires_with_nested_selection,
    requires_with_type_conditions_for_each_member,
    root_fields_of_one_subgraph_share_one_fetch,
    root_fields_of_two_subgraphs_each_get_one_fetch,
    selecting_a_scalar_with_a_selection_set_is_rejected,
    skip_and_include_follow_variables,
    skip_and_include_together_need_both_to_allow,
    skip_on_an_inline_fragment_drops_its_fields,
    skipped_entity_field_is_absent,
    subgraph_error_extensions_are_kept_and_the_service_added,
    subscriptions_are_not_served_over_http,
    the_key_the_target_can_resolve_is_used,
    the_operation_name_picks_the_operation_to_run,
    the_same_entity_reached_twice_is_fetched_once,
    the_same_entity_twice_in_a_list_is_sent_once,
    two_subgraphs_reached_from_one_entity_run_in_parallel,
    typename_can_be_aliased,
    typename_is_answered_everywhere,
    typename_of_an_entity_needs_no_entity_fetch,
    typename_of_the_mutation_root,
    typename_on_a_union_without_other_fields,
    union_member_fields_from_another_subgraph_in_one_request,
    union_members_from_different_subgraphs,
    union_members_in_requested_order,
    union_members_with_different_keys_share_a_request_and_go_deeper,
    variable_defaults_reach_the_subgraphs,
    variables_in_entity_fetch_arguments,
}

/// The fixture subgraphs validate what the gateway sends, so a case fails when the
/// gateway sends what a strict subgraph would refuse, even where the fixture could
/// answer it.
#[test]
fn the_fixture_subgraph_refuses_an_invalid_operation_and_accepts_entity_fetches() {
    let sdl = "type Query { item: Item }
union Item = Sensor | Gauge
type Sensor @key(fields: \"id\") { id: ID! reading: Int! }
type Gauge { reading: Int }";
    let data = serde_json::json!({ "Query": { "item": { "__typename": "Gauge", "reading": 1 } },
        "entities": { "Sensor": [ { "id": "s", "reading": 2 } ] } });
    let fx = fixture::Fixture::new(sdl, data);
    // One response name, `Int!` in one member and `Int` in the other: invalid here.
    let clash = fx.execute(&serde_json::json!({
        "query": "{ item { ... on Sensor { reading } ... on Gauge { reading } } }"
    }));
    let message = clash["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("invalid subgraph operation"), "{clash}");
    let fine = fx.execute(&serde_json::json!({
        "query": "query($r: [_Any!]!) { _entities(representations: $r) { ... on Sensor { reading } } }",
        "variables": { "r": [ { "__typename": "Sensor", "id": "s" } ] }
    }));
    assert_eq!(
        fine,
        serde_json::json!({ "data": { "_entities": [ { "reading": 2 } ] } })
    );
}
