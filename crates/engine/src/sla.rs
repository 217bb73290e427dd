//! SLA clocks, idle and window-closing timers.
//!
//! `first_response` runs from the card's first message to the first reply
//! by an agent; `next_response` from each later customer message (when the
//! team had answered) to the next agent reply; `resolution` from the card's
//! creation until it is done or closed. Replies sent by rules (greetings)
//! do not stop a clock: the promise is that a person answers. Clocks stop
//! while the card is in a `paused` status and count only business hours
//! when the window says `business`. The window is the last `sla` line of
//! the kind whose `when` holds, else the plain one; it is chosen again when
//! a field changes.

use crate::engine::Run;
use crate::eval;
use crate::state::{CardId, Clock, SlaView, Timer, TimerKind};
use chrono::{DateTime, Duration, Utc};
use switchboard_lang::model::{Sla, SlaKind, StatusKind, Trigger};

impl Run<'_, '_> {
    fn sla_for(&self, card: CardId, kind: SlaKind) -> Option<Sla> {
        let pipe = self.pipe(card);
        let mut chosen: Option<&Sla> = None;
        for s in pipe.slas.iter().filter(|s| s.kind == kind) {
            match &s.when {
                None if chosen.is_none_or(|c| c.when.is_none()) => chosen = Some(s),
                Some(c) if matches!(eval::condition(self, card, c, false), Ok(None)) => {
                    chosen = Some(s)
                }
                _ => {}
            }
        }
        chosen.cloned()
    }

    fn paused(&self, card: CardId) -> bool {
        let c = &self.state.cards[card];
        self.pipe(card)
            .status(&c.status)
            .is_some_and(|s| s.kind == StatusKind::Paused)
    }

    /// Starts a clock (if the pipe has a window of that kind).
    pub(crate) fn start_clock(&mut self, card: CardId, kind: SlaKind) {
        if self.sla_for(card, kind).is_none()
            || self.state.cards[card]
                .clocks
                .iter()
                .any(|c| c.kind == kind && c.state != "stopped")
        {
            return;
        }
        let running = (!self.paused(card)).then_some(self.now);
        self.state.cards[card].clocks.push(Clock {
            kind,
            spent: 0,
            running_since: running,
            warn_at: None,
            due_at: None,
            state: "ok",
        });
        self.schedule_clock(card, kind);
    }

    /// Stops a clock for good (the team answered, the card is done).
    pub(crate) fn stop_clock(&mut self, card: CardId, kind: SlaKind) {
        self.unschedule_clock(card, kind);
        let now = self.now;
        if let Some(c) = self.state.cards[card]
            .clocks
            .iter_mut()
            .find(|c| c.kind == kind && c.state != "stopped")
        {
            if let Some(since) = c.running_since.take() {
                c.spent += (now - since).num_seconds().max(0) as u64;
            }
            c.warn_at = None;
            c.due_at = None;
            if c.state != "breached" {
                c.state = "stopped";
            } else {
                // A breached clock stays breached on the card's record, but stops.
                c.state = "breached_stopped";
            }
        }
        self.refresh_view(card);
    }

    /// Pauses or resumes every clock of a card as its status changes.
    pub(crate) fn clocks_follow_status(&mut self, card: CardId) {
        let paused = self.paused(card);
        let open = self.state.cards[card].open;
        if !open {
            for kind in [
                SlaKind::FirstResponse,
                SlaKind::NextResponse,
                SlaKind::Resolution,
            ] {
                self.stop_clock(card, kind);
            }
            return;
        }
        let kinds: Vec<SlaKind> = self.state.cards[card]
            .clocks
            .iter()
            .filter(|c| is_live(c))
            .map(|c| c.kind)
            .collect();
        for kind in kinds {
            let business = self.sla_for(card, kind).is_some_and(|s| s.business);
            let Some(cal) = self.engine.calendar(&self.pipe(card).name) else {
                continue;
            };
            let now = self.now;
            let running = self.clock_mut(card, kind).running_since;
            match (paused, running) {
                (true, Some(since)) => {
                    self.unschedule_clock(card, kind);
                    let c = self.clock_mut(card, kind);
                    c.spent += if business {
                        cal.elapsed(since, now)
                    } else {
                        (now - since).num_seconds().max(0) as u64
                    };
                    c.running_since = None;
                    c.due_at = None;
                    c.warn_at = None;
                }
                (false, None) => {
                    self.clock_mut(card, kind).running_since = Some(now);
                    self.schedule_clock(card, kind);
                }
                _ => {}
            }
        }
        self.refresh_view(card);
    }

    /// Chooses windows again (a field such as priority changed).
    pub(crate) fn clocks_follow_fields(&mut self, card: CardId) {
        let kinds: Vec<SlaKind> = self.state.cards[card]
            .clocks
            .iter()
            .filter(|c| is_live(c) && c.running_since.is_some())
            .map(|c| c.kind)
            .collect();
        for kind in kinds {
            self.unschedule_clock(card, kind);
            self.schedule_clock(card, kind);
        }
        self.refresh_view(card);
    }

    fn clock_mut(&mut self, card: CardId, kind: SlaKind) -> &mut Clock {
        let clocks = &mut self.state.cards[card].clocks;
        let i = clocks
            .iter()
            .rposition(|c| c.kind == kind && is_live(c))
            .unwrap_or(0);
        &mut clocks[i]
    }

    /// Computes a running clock's warning and due instants and sets timers.
    fn schedule_clock(&mut self, card: CardId, kind: SlaKind) {
        let Some(sla) = self.sla_for(card, kind) else {
            return;
        };
        let Some(cal) = self.engine.calendar(&self.pipe(card).name) else {
            return;
        };
        let c = self.clock_mut(card, kind);
        let Some(since) = c.running_since else { return };
        let at = |secs: u64| -> DateTime<Utc> {
            if sla.business {
                cal.add(since, secs)
            } else {
                since + Duration::seconds(secs.min(i64::MAX as u64 / 2) as i64)
            }
        };
        let due = at(sla.window_secs.saturating_sub(c.spent));
        let warn = sla
            .warn_secs
            .filter(|w| *w > c.spent && c.state == "ok")
            .map(|w| at(w - c.spent));
        c.due_at = Some(due);
        c.warn_at = warn;
        let breached = c.state == "breached";
        if !breached {
            self.state.timers.insert(Timer {
                at: due,
                card,
                kind: TimerKind::SlaBreach(kind),
            });
        }
        if let Some(w) = warn {
            self.state.timers.insert(Timer {
                at: w,
                card,
                kind: TimerKind::SlaWarning(kind),
            });
        }
        self.refresh_view(card);
    }

    fn unschedule_clock(&mut self, card: CardId, kind: SlaKind) {
        let (warn, due) = match self.state.cards[card]
            .clocks
            .iter()
            .rfind(|c| c.kind == kind && is_live(c))
        {
            Some(c) => (c.warn_at, c.due_at),
            None => return,
        };
        if let Some(w) = warn {
            self.state.timers.remove(&Timer {
                at: w,
                card,
                kind: TimerKind::SlaWarning(kind),
            });
        }
        if let Some(d) = due {
            self.state.timers.remove(&Timer {
                at: d,
                card,
                kind: TimerKind::SlaBreach(kind),
            });
        }
    }

    /// The card's SLA indicator: the running clock due first, else a breach.
    pub(crate) fn refresh_view(&mut self, card: CardId) {
        let c = &mut self.state.cards[card];
        let running = c
            .clocks
            .iter()
            .filter(|k| is_live(k))
            .min_by_key(|k| k.due_at.unwrap_or(DateTime::<Utc>::MAX_UTC));
        c.sla = match running {
            Some(k) => Some(SlaView {
                kind: k.kind.name().to_string(),
                state: k.state.to_string(),
                due_at: k.due_at,
            }),
            None => c
                .clocks
                .iter()
                .rfind(|k| k.state.starts_with("breached"))
                .map(|k| SlaView {
                    kind: k.kind.name().to_string(),
                    state: "breached".to_string(),
                    due_at: None,
                }),
        };
    }

    /// After a message either way: idle and window-closing timers start over.
    /// The card remembers its own timers, so nothing scans the timer set.
    pub(crate) fn message_timers(&mut self, card: CardId, inbound: bool) {
        let now = self.now;
        self.state.cards[card].last_message_at = Some(now);
        let mut kept = Vec::new();
        for t in std::mem::take(&mut self.state.cards[card].timers) {
            let restart = match t.kind {
                TimerKind::Idle(_) => true,
                TimerKind::WindowClosing(_) => inbound,
                _ => false,
            };
            if restart {
                self.state.timers.remove(&t);
            } else {
                kept.push(t);
            }
        }
        // The pipe's idle and window-closing rules (`pipe()` falls back to
        // the first pipe for a card whose pipe is gone; so does this).
        let engine = self.engine;
        let timers = &engine.plans[self.pipe_index(card).unwrap_or(0)].message_timers;
        for trigger in timers {
            let at = match *trigger {
                Trigger::Idle(s) => now + Duration::seconds(s as i64),
                Trigger::WindowClosing(s) if inbound => {
                    now + crate::engine::WINDOW - Duration::seconds(s as i64)
                }
                _ => continue,
            };
            let kind = match *trigger {
                Trigger::Idle(s) => TimerKind::Idle(s),
                Trigger::WindowClosing(s) => TimerKind::WindowClosing(s),
                _ => continue,
            };
            let timer = Timer { at, card, kind };
            if !kept.contains(&timer) {
                self.state.timers.insert(timer.clone());
                kept.push(timer);
            }
        }
        self.state.cards[card].timers = kept;
    }
}

/// Whether a clock still counts (not stopped).
fn is_live(c: &Clock) -> bool {
    c.state == "ok" || c.state == "warning" || c.state == "breached"
}
