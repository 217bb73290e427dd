//! What the checker accepts and what the model then says: the positive side
//! of the diagnostics tests.

use switchboard_lang::model::{Action, AssignMode, Route, Subject, Trigger};
use switchboard_lang::{check, Checked, MemoryLoader, Sources};

fn check_pipe(body: &str) -> Checked {
    let text = format!(
        "pipe p \"P\" {{\n  number \"+55 11 4000-1000\"\n  timezone \"America/Sao_Paulo\"\n  hours \"Mon-Fri 09:00-18:00\"\n  field plan: choice(basic, business, enterprise)\n  field priority: choice(low, normal, high) = normal\n  status new open initial\n  status doing active\n  status done done final\n  flow new -> doing | done\n  flow doing -> done\n  team frontline {{ ana@acme.com bruno@acme.com }}\n{body}}}\n"
    );
    let mut sources = Sources::new();
    sources.add("p.flow", text);
    check(&mut sources, &MemoryLoader::default())
}

fn clean(body: &str) -> Checked {
    let c = check_pipe(body);
    assert!(c.diagnostics.is_empty(), "{body}\n{:#?}", c.diagnostics);
    c
}

#[test]
fn language_words_can_be_values_where_one_value_belongs() {
    let c = clean("  on message.received when plan = business and last_responder = team {\n    set plan = business\n  }\n");
    assert!(
        matches!(&c.workflow.pipes[0].rules[0].actions[0], Action::Set { field, .. } if field == "plan")
    );
}

#[test]
fn assignment_modes_default_to_round_robin() {
    let c = clean("  on card.created {\n    assign frontline available\n  }\n");
    match &c.workflow.pipes[0].rules[0].actions[0] {
        Action::Assign {
            mode,
            available,
            sticky,
            ..
        } => {
            assert_eq!(*mode, AssignMode::RoundRobin);
            assert!(*available && !*sticky);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_condition_that_stops_the_chain_silences_the_loop_warning() {
    clean("  rule up on field.changed(priority) when priority = low {\n    set priority = normal\n  }\n");
    let looping = check_pipe(
        "  rule up on field.changed(priority) when priority = low {\n    set priority = low\n  }\n",
    );
    assert!(
        looping.diagnostics.iter().any(|d| d.code == "WF0025"),
        "{:?}",
        looping.diagnostics
    );
}

#[test]
fn weekday_numbers_are_read_as_people_write_them() {
    let c = clean("  every \"0 8 * * 1-5\" {\n    notify team frontline \"good morning\"\n  }\n");
    assert_eq!(c.workflow.pipes[0].schedules[0].cron, "0 0 8 * * 2,3,4,5,6");
}

#[test]
fn a_schedule_without_when_has_no_card_to_talk_about() {
    let c = check_pipe("  every \"0 8 * * Mon\" {\n    notify assignee \"hi\"\n    notify team frontline \"{{ card.number }}\"\n  }\n");
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["WF0034", "WF0034"], "{:#?}", c.diagnostics);
}

#[test]
fn routes_match_phones_by_longest_prefix_and_other_values_exactly() {
    let route = |by: Subject, entries: &[(&str, &str)]| Route {
        name: "r".into(),
        by,
        entries: entries
            .iter()
            .map(|(k, t)| (k.to_string(), t.to_string()))
            .collect(),
        otherwise: "fallback".into(),
    };
    let phone = route(
        Subject::Contact("phone".into()),
        &[("55", "brazil"), ("5511", "sp")],
    );
    assert_eq!(phone.lookup("+55 11 98765-0001"), "sp");
    assert_eq!(phone.lookup("+55 21 98765-0001"), "brazil");
    assert_eq!(phone.lookup("+351 912 345 678"), "fallback");
    let city = route(Subject::Contact("city".into()), &[("Rio", "rio")]);
    assert_eq!(city.lookup("rio"), "rio");
    assert_eq!(city.lookup("Rio Branco"), "fallback");
}

#[test]
fn triggers_carry_their_arguments() {
    let c = clean(
        "  on status.changed(done) {\n    note \"x\"\n  }\n  on idle 1h30m when status = doing {\n    note \"y\"\n  }\n  on window.closing 1h {\n    note \"z\"\n  }\n",
    );
    let t: Vec<&Trigger> = c.workflow.pipes[0]
        .rules
        .iter()
        .map(|r| &r.trigger)
        .collect();
    assert_eq!(
        t,
        [
            &Trigger::StatusChanged(Some("done".into())),
            &Trigger::Idle(5400),
            &Trigger::WindowClosing(3600)
        ]
    );
}

#[test]
fn accented_words_are_values() {
    clean(
        "  field city: text\n  on message.received when city = São_Paulo {\n    note \"x\"\n  }\n",
    );
}

#[test]
fn route_keys_are_typed_and_unique_ignoring_case() {
    let c = check_pipe(
        "  field vip: bool\n  field city: text\n  route by_vip by vip {\n    maybe -> frontline\n    else -> frontline\n  }\n  route by_city by city {\n    Rio -> frontline\n    rio -> frontline\n    else -> frontline\n  }\n",
    );
    let codes: Vec<&str> = c.diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["WF0010", "WF0008"], "{:#?}", c.diagnostics);
}

#[test]
fn a_schedule_has_no_message_and_the_caret_finds_the_name_inside_braces() {
    let c = check_pipe(
        "  every \"0 8 * * Mon\" when status = new {\n    note \"{{ message.text }}\"\n  }\n  every \"0 9 * * Mon\" {\n    notify team frontline \"Every card is waiting: {{ card.number }}\"\n  }\n",
    );
    assert_eq!(c.diagnostics.len(), 2, "{:#?}", c.diagnostics);
    assert!(c.diagnostics[0]
        .message
        .contains("there is no message here"));
    // The caret is on `card` inside `{{ }}`, not on the plain word "card".
    let text = "    notify team frontline \"Every card is waiting: {{ card.number }}\"";
    let d = &c.diagnostics[1];
    assert_eq!(d.span.end - d.span.start, 4);
    let _ = text;
}

#[test]
fn names_that_are_language_words_can_be_used() {
    clean("  team rule { carla@acme.com }\n  on card.created {\n    assign rule\n    notify team rule \"new card\"\n  }\n");
}

#[test]
fn template_arguments_may_be_language_words() {
    let mut sources = Sources::new();
    sources.add(
        "t.flow",
        "template desk(number, plan = business) {\n  number $number\n  field plan: choice(basic, business) = $plan\n  status new open initial\n}\n\npipe p \"P\" from desk(number: \"+55 11 4000-1000\", plan: basic) {\n}\n",
    );
    let c = check(&mut sources, &MemoryLoader::default());
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}
