//! The rhai sandbox in which workflow scripts run.
//!
//! A script sees read-only `card`, `contact` and `message` maps and returns a
//! value. It cannot touch files, the network or the clock (rhai is built
//! without them: no file system, no `timestamp()`, no modules), and every run is
//! bounded in operations, call depth, string, array and map sizes. A script
//! that breaks a limit or fails returns an error naming the script's own line.

use rhai::packages::Package as _;
use rhai::{Dynamic, Engine, Scope, AST};
use std::sync::Arc;

/// The limits every script runs under.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Operations per run (each step of the interpreter counts one).
    pub max_operations: u64,
    /// Function call depth.
    pub max_call_depth: usize,
    /// Length of any string, in bytes.
    pub max_string_size: usize,
    /// Length of any array.
    pub max_array_size: usize,
    /// Entries of any map.
    pub max_map_size: usize,
    /// Nesting of expressions in the source.
    pub max_expr_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_operations: 100_000,
            max_call_depth: 32,
            max_string_size: 64 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_expr_depth: 64,
        }
    }
}

/// What went wrong with a script, with the line in the script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScriptError {
    /// One sentence.
    pub message: String,
    /// 1-based line in the script's own text, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
}

impl ScriptError {
    fn from_rhai(err: &rhai::EvalAltResult) -> ScriptError {
        let pos = err.position();
        let message = match err {
            rhai::EvalAltResult::ErrorTooManyOperations(_) => {
                "the script ran too long (over its operation budget)".to_string()
            }
            other => strip_position(&other.to_string()),
        };
        ScriptError {
            message,
            line: pos.line(),
            column: pos.position(),
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" (line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A compiled script, cheap to clone and to run many times.
#[derive(Clone, Debug)]
pub struct CompiledScript {
    ast: Arc<AST>,
}

/// The sandboxed engine. Build one and share it.
pub struct Sandbox {
    engine: Engine,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sandbox")
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox::new(Limits::default())
    }
}

impl Sandbox {
    /// An engine with these limits and nothing that reaches outside.
    pub fn new(limits: Limits) -> Sandbox {
        let mut engine = Engine::new_raw();
        // Only the pure standard packages: arithmetic, logic, strings, arrays, maps.
        engine.register_global_module(rhai::packages::StandardPackage::new().as_shared_module());
        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_depth);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        engine.set_max_expr_depths(limits.max_expr_depth, limits.max_expr_depth);
        engine.set_strict_variables(false);
        // `print` and `debug` would write to stdout: make them do nothing.
        engine.on_print(|_| {});
        engine.on_debug(|_, _, _| {});
        engine.disable_symbol("eval");
        Sandbox { engine }
    }

    /// Compiles a script; the error names the line in the script.
    pub fn compile(&self, source: &str) -> Result<CompiledScript, ScriptError> {
        self.engine
            .compile(source)
            .map(|ast| CompiledScript { ast: Arc::new(ast) })
            .map_err(|e| {
                let pos = e.position();
                ScriptError {
                    message: strip_position(&e.err_type().to_string()),
                    line: pos.line(),
                    column: pos.position(),
                }
            })
    }

    /// Runs a script with the given read-only values in scope.
    pub fn run(
        &self,
        script: &CompiledScript,
        vars: &[(&str, Dynamic)],
    ) -> Result<Dynamic, ScriptError> {
        let mut scope = Scope::new();
        for (name, value) in vars {
            scope.push_constant_dynamic(*name, value.clone());
        }
        self.engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &script.ast)
            .map_err(|e| ScriptError::from_rhai(&e))
    }

    /// Runs a script that must answer yes or no.
    pub fn run_bool(
        &self,
        script: &CompiledScript,
        vars: &[(&str, Dynamic)],
    ) -> Result<bool, ScriptError> {
        let value = self.run(script, vars)?;
        value.as_bool().map_err(|ty| ScriptError {
            message: format!("the script must end with true or false, but it gave a {ty}"),
            line: None,
            column: None,
        })
    }
}

/// Converts JSON data (cards, contacts, messages) into a value a script can read.
pub fn from_json(value: &serde_json::Value) -> Dynamic {
    match value {
        serde_json::Value::Null => Dynamic::UNIT,
        serde_json::Value::Bool(b) => Dynamic::from(*b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Dynamic::from(i),
            None => Dynamic::from(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Dynamic::from(s.clone()),
        serde_json::Value::Array(items) => {
            Dynamic::from_array(items.iter().map(from_json).collect())
        }
        serde_json::Value::Object(map) => {
            let mut m = rhai::Map::new();
            for (k, v) in map {
                m.insert(k.as_str().into(), from_json(v));
            }
            Dynamic::from_map(m)
        }
    }
}

pub use rhai::{Dynamic as ScriptValue, Map as ScriptMap};

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, Dynamic)]) -> Dynamic {
        let mut m = rhai::Map::new();
        for (k, v) in pairs {
            m.insert((*k).into(), v.clone());
        }
        Dynamic::from_map(m)
    }

    #[test]
    fn a_condition_reads_the_card() {
        let sb = Sandbox::default();
        let s = sb
            .compile("card.amount > 1000 && contact.name.starts_with(\"Dr\")")
            .expect("compiles");
        let card = map(&[("amount", Dynamic::from(1500_i64))]);
        let contact = map(&[("name", Dynamic::from("Dr. Ana".to_string()))]);
        assert!(sb
            .run_bool(&s, &[("card", card), ("contact", contact)])
            .expect("runs"));
    }

    #[test]
    fn an_endless_loop_is_stopped_by_the_budget() {
        let sb = Sandbox::default();
        let s = sb
            .compile("let x = 0;\nloop { x += 1; }")
            .expect("compiles");
        let err = sb.run(&s, &[]).expect_err("must stop");
        assert!(err.message.contains("operation budget"), "{err:?}");
    }

    #[test]
    fn a_huge_string_is_refused() {
        let sb = Sandbox::default();
        let s = sb
            .compile("let s = \"x\";\nfor i in 0..30 { s += s; }\ns")
            .expect("compiles");
        assert!(sb.run(&s, &[]).is_err());
    }

    #[test]
    fn compile_errors_name_the_scripts_line() {
        let sb = Sandbox::default();
        let err = sb
            .compile("let a = 1;\nlet b = ;\n")
            .expect_err("bad script");
        assert_eq!(err.line, Some(2));
    }

    #[test]
    fn the_clock_and_eval_are_not_available() {
        let sb = Sandbox::default();
        assert!(sb
            .compile("timestamp()")
            .and_then(|s| sb.run(&s, &[]))
            .is_err());
        assert!(sb.compile("eval(\"1\")").is_err());
    }

    #[test]
    fn deep_recursion_is_bounded() {
        let sb = Sandbox::default();
        let s = sb.compile("fn f(n) { f(n + 1) }\nf(0)").expect("compiles");
        assert!(sb.run(&s, &[]).is_err());
    }

    #[test]
    fn a_non_bool_condition_is_an_error() {
        let sb = Sandbox::default();
        let s = sb.compile("42").expect("compiles");
        assert!(sb.run_bool(&s, &[]).is_err());
    }
}
