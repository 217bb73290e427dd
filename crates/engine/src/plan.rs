//! What the engine works out once per workflow, so that one event does not
//! walk every rule of a pipe:
//!
//! - rules by what starts them: a message looks only at the rules on
//!   `message.received`, in file order;
//! - every comparison in the rules' conditions (and `within hours`) as a
//!   numbered *atom*, shared by all rules that write the same comparison.
//!   While the card does not change, an atom is evaluated once: a hundred
//!   rules on `status = doing` cost one string comparison. Scripts are never
//!   shared this way: each runs when its rule is tried;
//! - for each rule, its *guards*: atoms that, when false, make the
//!   condition false before any script would run. Without "why not" (the
//!   server), a rule with a false guard is passed over: it would not fire,
//!   fail or leave a trace. With "why not", every rule is evaluated in
//!   full, to say why;
//! - the idle and window-closing timers each message restarts.
//!
//! The plans change how much work a step does, never what it decides: the
//! rules are tried in the same order, conditions are evaluated in the same
//! order (a script still runs, and can still fail, exactly when it did),
//! and the "why not" of each rule is the same text.

use crate::engine::Fired;
use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::rc::Rc;
use switchboard_lang::model::{Condition, Op, Operand, Pipe, Subject, Trigger};

/// One pipe's plan.
#[derive(Debug, Default)]
pub(crate) struct PipePlan {
    /// Each rule's condition, numbered (aligned with `Pipe::rules`).
    pub(crate) conditions: Vec<Option<Node>>,
    /// Each rule's guards (aligned with `Pipe::rules`): atoms such that
    /// when one is false, the condition is false and evaluating it would
    /// run no script. A rule with a false guard is passed over without
    /// evaluating its condition; its verdict is the same.
    pub(crate) guards: Vec<Box<[usize]>>,
    /// The atoms of the pipe's rule conditions.
    pub(crate) atoms: Vec<Atom>,
    /// For each kind of change that starts rules, the rules it starts, in
    /// file order.
    started: HashMap<Fired, Vec<Candidate>>,
    /// The rules on `status.changed` without a status: what a move to a
    /// status no rule names starts.
    any_status: Vec<Candidate>,
    /// The `idle` and `window.closing` triggers, in file order: the timers
    /// each message (re)starts.
    pub(crate) message_timers: Vec<Trigger>,
}

/// A rule a change starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Candidate {
    /// The rule's index in the pipe.
    pub(crate) rule: usize,
    /// Its first guard (see [`PipePlan::guards`]), tested before anything
    /// else; [`NO_GUARD`] when it has none.
    pub(crate) guard: usize,
}

/// The guard of a rule without guards.
pub(crate) const NO_GUARD: usize = usize::MAX;

/// A condition with its comparisons numbered; the same shape as the
/// [`Condition`] it was made from, which is walked beside it.
#[derive(Debug)]
pub(crate) enum Node {
    And(Box<Node>, Box<Node>),
    /// Either; `true` when the right side holds a script, which must then
    /// run even when the left side already holds (it may fail).
    Or(Box<Node>, Box<Node>, bool),
    Not(Box<Node>),
    /// A comparison or `within hours`: an index into [`PipePlan::atoms`].
    Atom(usize),
    Script,
}

impl Node {
    /// Adds the atoms that make the condition false, without running a
    /// script, when any of them is false: an atom is one; `a and b` has
    /// those of `a`, and those of `b` when `a` runs no script (`a` then
    /// cannot fail, and `b`'s own guards come before its scripts); `or`
    /// and `not` have none.
    fn guards(&self, out: &mut Vec<usize>) {
        match self {
            Node::Atom(i) => {
                if !out.contains(i) {
                    out.push(*i);
                }
            }
            Node::And(a, b) => {
                a.guards(out);
                if !a.has_script() {
                    b.guards(out);
                }
            }
            Node::Or(..) | Node::Not(_) | Node::Script => {}
        }
    }

    fn has_script(&self) -> bool {
        match self {
            Node::And(a, b) | Node::Or(a, b, _) => a.has_script() || b.has_script(),
            Node::Not(a) => a.has_script(),
            Node::Script => true,
            Node::Atom(_) => false,
        }
    }
}

/// A comparison of a card, its contact, the message or the clock that any
/// number of rules share.
#[derive(Debug)]
pub(crate) enum Atom {
    /// `within hours`.
    Hours,
    /// `message.text ~ "..."`, read from the engine's set of text patterns:
    /// the pattern's place in the set.
    TextPattern(usize),
    /// Any other comparison.
    Compare {
        subject: Subject,
        op: Op,
        value: Operand,
    },
}

impl PipePlan {
    /// The plan of a pipe; `patterns` gives each text pattern's place in the
    /// engine's set of text patterns.
    pub(crate) fn new(pipe: &Pipe, patterns: Option<&HashMap<String, usize>>) -> PipePlan {
        let mut plan = PipePlan::default();
        let mut keys = HashMap::new();
        for rule in &pipe.rules {
            let node = rule
                .condition
                .as_ref()
                .map(|c| plan.node(c, &mut keys, patterns));
            let mut guards = Vec::new();
            if let Some(n) = &node {
                n.guards(&mut guards);
            }
            plan.guards.push(guards.into_boxed_slice());
            plan.conditions.push(node);
        }
        // Every change that starts at least one rule, with the rules it
        // starts: the same test as trying each rule's trigger.
        let mut kinds: Vec<Fired> = Vec::new();
        for rule in &pipe.rules {
            let fired = match &rule.trigger {
                Trigger::CardCreated => Fired::CardCreated,
                Trigger::MessageReceived => Fired::MessageReceived,
                Trigger::MessageSent => Fired::MessageSent,
                Trigger::CardAssigned => Fired::CardAssigned,
                Trigger::StatusChanged(None) => continue,
                Trigger::StatusChanged(Some(s)) => Fired::StatusChanged(s.clone()),
                Trigger::FieldChanged(f) => Fired::FieldChanged(f.clone()),
                Trigger::SlaWarning(k) => Fired::SlaWarning(*k),
                Trigger::SlaBreached(k) => Fired::SlaBreached(*k),
                Trigger::Idle(s) => Fired::Idle(*s),
                Trigger::WindowClosing(s) => Fired::WindowClosing(*s),
            };
            if !kinds.contains(&fired) {
                kinds.push(fired);
            }
        }
        let starts = |fired: &Fired| -> Vec<usize> {
            (0..pipe.rules.len())
                .filter(|&i| fired.starts(&pipe.rules[i].trigger))
                .collect()
        };
        let candidates = |rules: Vec<usize>, guards: &[Box<[usize]>]| -> Vec<Candidate> {
            rules
                .into_iter()
                .map(|rule| Candidate {
                    rule,
                    guard: guards[rule].first().copied().unwrap_or(NO_GUARD),
                })
                .collect()
        };
        // A move to a status no rule names starts only the rules on any status.
        let any_status = (0..pipe.rules.len())
            .filter(|&i| pipe.rules[i].trigger == Trigger::StatusChanged(None))
            .collect();
        plan.any_status = candidates(any_status, &plan.guards);
        for fired in kinds {
            let rules = candidates(starts(&fired), &plan.guards);
            plan.started.insert(fired, rules);
        }
        plan.message_timers = pipe
            .rules
            .iter()
            .filter(|r| matches!(r.trigger, Trigger::Idle(_) | Trigger::WindowClosing(_)))
            .map(|r| r.trigger.clone())
            .collect();
        plan
    }

    /// The rules a change starts, in file order.
    pub(crate) fn rules_for(&self, fired: &Fired) -> &[Candidate] {
        match self.started.get(fired) {
            Some(rules) => rules,
            None if matches!(fired, Fired::StatusChanged(_)) => &self.any_status,
            None => &[],
        }
    }

    fn node(
        &mut self,
        c: &Condition,
        keys: &mut HashMap<String, usize>,
        patterns: Option<&HashMap<String, usize>>,
    ) -> Node {
        match c {
            Condition::And(a, b) => Node::And(
                Box::new(self.node(a, keys, patterns)),
                Box::new(self.node(b, keys, patterns)),
            ),
            Condition::Or(a, b) => {
                let (a, b) = (self.node(a, keys, patterns), self.node(b, keys, patterns));
                let script = b.has_script();
                Node::Or(Box::new(a), Box::new(b), script)
            }
            Condition::Not(a) => Node::Not(Box::new(self.node(a, keys, patterns))),
            Condition::Script(_) => Node::Script,
            Condition::WithinHours => {
                Node::Atom(self.atom("within hours".into(), keys, || Atom::Hours))
            }
            Condition::Compare { subject, op, value } => {
                let key = format!("{subject:?} {op:?} {}", operand_key(value));
                let pattern = match (subject, op, value) {
                    (Subject::Message(m), Op::Matches, Operand::Regex(p)) if m == "text" => {
                        patterns.and_then(|ps| ps.get(p.source())).copied()
                    }
                    _ => None,
                };
                Node::Atom(self.atom(key, keys, || match pattern {
                    Some(i) => Atom::TextPattern(i),
                    None => Atom::Compare {
                        subject: subject.clone(),
                        op: *op,
                        value: value.clone(),
                    },
                }))
            }
        }
    }

    fn atom(
        &mut self,
        key: String,
        keys: &mut HashMap<String, usize>,
        make: impl FnOnce() -> Atom,
    ) -> usize {
        *keys.entry(key).or_insert_with(|| {
            self.atoms.push(make());
            self.atoms.len() - 1
        })
    }
}

/// What makes two comparisons the same (values by their exact form, so
/// `5` and `"5"` differ).
fn operand_key(value: &Operand) -> String {
    match value {
        Operand::Value(v) => format!("{v:?}"),
        Operand::List(vs) => format!("{vs:?}"),
        Operand::Regex(p) => format!("~{:?}", p.source()),
    }
}

/// What the atoms were, for the card and the change the rules now look at.
/// [`Memo::forget`] starts over (a new card, or a rule changed the card):
/// the old answers just stop counting.
#[derive(Debug)]
pub(crate) struct Memo {
    size: usize,
    /// Bumped by `forget`; an answer counts only from the same generation.
    generation: Cell<u8>,
    /// Per atom: `generation << 1 | holds` (made on first use; shared so
    /// that the rule loop can hold it while rules change the card).
    answers: OnceCell<Rc<[Cell<u8>]>>,
}

/// The last generation before they start again from 1 (`generation << 1`
/// must fit in a byte; 0 is never a generation, so new answers are unknown).
const LAST_GENERATION: u8 = u8::MAX >> 1;

impl Memo {
    /// Room for `size` atoms (the most any pipe has).
    pub(crate) fn new(size: usize) -> Memo {
        Memo {
            size,
            generation: Cell::new(1),
            answers: OnceCell::new(),
        }
    }

    /// Forgets every answer.
    pub(crate) fn forget(&self) {
        let generation = self.generation.get();
        if generation < LAST_GENERATION {
            self.generation.set(generation + 1);
        } else {
            // Generations start again: clear the old answers first.
            if let Some(answers) = self.answers.get() {
                answers.iter().for_each(|a| a.set(0));
            }
            self.generation.set(1);
        }
    }

    /// The answers (see [`Memo::known`]).
    #[inline]
    pub(crate) fn answers(&self) -> &Rc<[Cell<u8>]> {
        self.answers
            .get_or_init(|| Rc::from(vec![Cell::new(0); self.size]))
    }

    /// An atom's answer in `answers`, if known for the card as it is now.
    #[inline]
    pub(crate) fn known(&self, answers: &[Cell<u8>], atom: usize) -> Option<bool> {
        let known = answers[atom].get();
        (known >> 1 == self.generation.get()).then_some(known & 1 == 1)
    }

    /// Keeps an atom's answer.
    #[inline]
    pub(crate) fn keep(&self, answers: &[Cell<u8>], atom: usize, holds: bool) {
        answers[atom].set(self.generation.get() << 1 | u8::from(holds));
    }

    /// How many of `candidates`, from the first, have a guard known to be
    /// false: the rules the loop can pass over without looking further.
    #[inline(never)]
    pub(crate) fn known_false(&self, candidates: &[Candidate], answers: &[Cell<u8>]) -> usize {
        let no = self.generation.get() << 1;
        candidates
            .iter()
            .take_while(|c| answers.get(c.guard).is_some_and(|a| a.get() == no))
            .count()
    }
}
