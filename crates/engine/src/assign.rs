//! Who gets a card: routing tables, then a team's assignment mode, with the
//! reason each candidate was or was not chosen. Cards nobody can take wait
//! in their team's queue until an agent comes online or frees capacity.

use crate::engine::{FiredKind, Run};
use crate::eval;
use crate::event::{Candidate, EffectKind};
use crate::state::{CardId, Cause};
use switchboard_lang::model::{AssignMode, AssignTarget};

/// How a rule asks to pick within a team.
#[derive(Debug, Clone, Copy)]
pub(crate) struct How {
    pub(crate) mode: AssignMode,
    pub(crate) available: bool,
    pub(crate) sticky: bool,
}

impl Default for How {
    fn default() -> Self {
        How {
            mode: AssignMode::RoundRobin,
            available: false,
            sticky: false,
        }
    }
}

/// `assign TARGET` in a rule.
pub(crate) fn by_rule(run: &mut Run, card: CardId, target: &AssignTarget, how: How, cause: &Cause) {
    match target {
        AssignTarget::Agent(a) => to_agent(run, card, a, cause),
        AssignTarget::Team(t) => to_team(run, card, t, how, cause),
        AssignTarget::Route(r) => {
            let pipe = run.pipe(card);
            let Some(route) = pipe.route(r) else { return };
            let value = eval::subject_value(run, card, &route.by)
                .map(|v| v.to_string())
                .unwrap_or_default();
            let team = route.lookup(&value).to_string();
            run.history(
                card,
                format!("route `{r}` sends `{value}` to team `{team}`"),
                cause,
            );
            to_team(run, card, &team, how, cause);
        }
    }
}

/// Assigns one named agent.
pub(crate) fn to_agent(run: &mut Run, card: CardId, agent: &str, cause: &Cause) {
    let why = match run.state.agents.get(agent) {
        None => "named directly (not signed in yet)".to_string(),
        Some(a) if !a.online => "named directly (away now)".to_string(),
        Some(_) => "named directly".to_string(),
    };
    let candidates = vec![Candidate {
        agent: agent.to_string(),
        chosen: true,
        why,
    }];
    assign(run, card, agent, None, candidates, cause);
}

/// Picks an agent of a team, or queues the card.
pub(crate) fn to_team(run: &mut Run, card: CardId, team: &str, how: How, cause: &Cause) {
    let pipe_name = run.state.cards[card].pipe.clone();
    let Some(members) = run.pipe(card).team(team).map(|t| t.members.clone()) else {
        let reason = format!("pipe `{pipe_name}` has no team `{team}`");
        run.effect(
            Some(card),
            EffectKind::Refused {
                what: format!("assign to {team}"),
                reason,
            },
            cause,
        );
        return;
    };
    // Who may take it, and why not.
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut eligible: Vec<usize> = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let load = run.state.load_of(m);
        let (ok, why) = match run.state.agents.get(m) {
            None if how.available => (false, "not signed in".to_string()),
            None => (
                true,
                "not signed in, but the rule does not ask for `available`".to_string(),
            ),
            Some(a) if how.available && !a.online => (false, "away".to_string()),
            Some(a) if how.available && load >= a.capacity => {
                (false, format!("at capacity ({load} of {})", a.capacity))
            }
            Some(_) => (true, format!("{load} open cards")),
        };
        if ok {
            eligible.push(i);
        }
        candidates.push(Candidate {
            agent: m.clone(),
            chosen: false,
            why,
        });
    }
    let key = (pipe_name.clone(), team.to_string());
    let contact = run.state.cards[card].contact.clone();
    let last = run
        .state
        .contacts
        .get(&contact)
        .and_then(|c| c.last_agent.get(&pipe_name))
        .cloned();
    let chosen = if let Some(i) = how
        .sticky
        .then_some(())
        .and(last)
        .and_then(|l| eligible.iter().copied().find(|&i| members[i] == l))
    {
        candidates[i].why = format!("served this contact before ({})", candidates[i].why);
        Some(i)
    } else {
        match how.mode {
            AssignMode::RoundRobin => {
                let start = run.state.round_robin.get(&key).copied().unwrap_or(0);
                let pick = (0..members.len())
                    .map(|k| (start + k) % members.len())
                    .find(|i| eligible.contains(i));
                if let Some(i) = pick {
                    run.state
                        .round_robin
                        .insert(key.clone(), (i + 1) % members.len());
                    candidates[i].why = format!("next in turn ({})", candidates[i].why);
                }
                pick
            }
            AssignMode::LeastBusy => {
                let pick = eligible
                    .iter()
                    .copied()
                    .min_by_key(|&i| (run.state.load_of(&members[i]), i));
                if let Some(i) = pick {
                    candidates[i].why = format!("fewest open cards ({})", candidates[i].why);
                }
                pick
            }
        }
    };
    match chosen {
        Some(i) => {
            candidates[i].chosen = true;
            let agent = members[i].clone();
            assign(run, card, &agent, Some(team.to_string()), candidates, cause);
        }
        None => {
            let c = &mut run.state.cards[card];
            c.team = Some(team.to_string());
            let queue = run.state.queues.entry(key).or_default();
            if !queue.contains(&card) {
                queue.push_back(card);
            }
            let why: Vec<String> = candidates
                .iter()
                .map(|c| format!("{} {}", c.agent, c.why))
                .collect();
            run.history(
                card,
                format!("waiting in team `{team}`'s queue: {}", why.join(", ")),
                cause,
            );
            run.effect(
                Some(card),
                EffectKind::Queued {
                    team: team.to_string(),
                    candidates,
                },
                cause,
            );
        }
    }
}

fn assign(
    run: &mut Run,
    card: CardId,
    agent: &str,
    team: Option<String>,
    candidates: Vec<Candidate>,
    cause: &Cause,
) {
    if run.state.cards[card].assignee.as_deref() == Some(agent) {
        return;
    }
    set_assignee(run, card, Some(agent.to_string()));
    if let Some(t) = &team {
        run.state.cards[card].team = Some(t.clone());
    }
    let pipe = run.state.cards[card].pipe.clone();
    let contact = run.state.cards[card].contact.clone();
    if let Some(c) = run.state.contacts.get_mut(&contact) {
        c.last_agent.insert(pipe, agent.to_string());
    }
    let others: Vec<String> = candidates
        .iter()
        .filter(|c| !c.chosen)
        .map(|c| format!("{} {}", c.agent, c.why))
        .collect();
    let mut what = format!("assigned to {agent}");
    if !others.is_empty() {
        what.push_str(&format!(" — {}", others.join(", ")));
    }
    run.history(card, what, cause);
    run.effect(
        Some(card),
        EffectKind::Assigned {
            agent: agent.to_string(),
            team,
            candidates,
        },
        cause,
    );
    run.started(card, cause, FiredKind::Assigned);
}

/// `unassign`.
pub(crate) fn unassign(run: &mut Run, card: CardId, cause: &Cause) {
    if run.state.cards[card].assignee.is_none() {
        return;
    }
    set_assignee(run, card, None);
    run.history(card, "unassigned".into(), cause);
    run.effect(Some(card), EffectKind::Unassigned, cause);
    drain_queues(run);
}

/// Changes the assignee, keeping agents' loads and the queues in step.
fn set_assignee(run: &mut Run, card: CardId, agent: Option<String>) {
    let c = &mut run.state.cards[card];
    let old = std::mem::replace(&mut c.assignee, agent.clone());
    if c.open {
        if let Some(o) = old {
            if let Some(l) = run.state.load.get_mut(&o) {
                *l = l.saturating_sub(1);
            }
        }
        if let Some(a) = agent.clone() {
            *run.state.load.entry(a).or_insert(0) += 1;
        }
    }
    if agent.is_some() {
        for q in run.state.queues.values_mut() {
            q.retain(|&c| c != card);
        }
    }
}

/// Marks a card open (or done/closed), keeping loads and queues in step.
pub(crate) fn set_open(run: &mut Run, card: CardId, open: bool) {
    let c = &mut run.state.cards[card];
    if c.open == open {
        return;
    }
    c.open = open;
    c.closed_at = if open { None } else { Some(run.now) };
    if let Some(a) = c.assignee.clone() {
        let l = run.state.load.entry(a).or_insert(0);
        *l = if open { *l + 1 } else { l.saturating_sub(1) };
    }
    if !open {
        for q in run.state.queues.values_mut() {
            q.retain(|&x| x != card);
        }
        drain_queues(run);
    }
}

/// Gives waiting cards, oldest first, to agents who can now take them.
pub(crate) fn drain_queues(run: &mut Run) {
    let keys: Vec<(String, String)> = run.state.queues.keys().cloned().collect();
    for (pipe, team) in keys {
        let key = (pipe.clone(), team.clone());
        while let Some(&card) = run.state.queues.get(&key).and_then(|q| q.front()) {
            let cause = Cause::Engine {
                reason: format!("team `{team}`'s queue"),
            };
            let before = run.state.cards[card].assignee.clone();
            // Queued cards waited for someone available; quietly check again.
            let how = How {
                available: true,
                ..How::default()
            };
            let effects = run.out.effects.len();
            to_team(run, card, &team, how, &cause);
            if run.state.cards[card].assignee == before {
                // Still nobody: drop the repeated "queued" record and stop.
                run.out.effects.truncate(effects);
                if let Some(h) = run.state.cards[card].history.last() {
                    if h.what.starts_with("waiting in team") && h.cause == cause {
                        run.state.cards[card].history.pop();
                    }
                }
                break;
            }
        }
    }
}
