//! JavaScript values -> the core's configuration schema ([`Builder::set`] by schema
//! name), and the core's refusals back as data ([`NativeConfigError`]). Nothing is
//! judged here: every value goes to the core as it is.

use libshutdown::{option_spec, Builder, ConfigError, OptionValue, Shutdown, OPTIONS};
use napi::bindgen_prelude::{Array, JsValue, Unknown};
use napi::ValueType;
use napi_derive::napi;

/// Why options were refused, for `index.js` to throw: the core's [`ConfigError`]
/// as it is (its `field` and `reason`, and `option`, the schema name to blame, from
/// which `index.js` names its own option), and whether the value was of a type the
/// option does not take (a `TypeError` there) rather than refused for what it is (a
/// `RangeError`). Nothing here is judged by the addon: a value JavaScript cannot hand
/// to the core at all (a boolean, an object) is the one refusal of its own.
#[napi(object)]
#[derive(Debug, PartialEq)]
pub struct NativeConfigError {
    pub field: String,
    pub option: Option<String>,
    pub reason: String,
    pub wrong_type: bool,
}

impl NativeConfigError {
    /// The core's refusal; `value`: what was set, when [`Builder::set`] refused it.
    pub(crate) fn of(e: &ConfigError, value: Option<&OptionValue>) -> Self {
        let wrong_type = match (value, option_spec(e.field())) {
            (Some(v), Some(spec)) => !spec.kind.accepts(v),
            _ => false,
        };
        NativeConfigError {
            field: e.field().to_string(),
            option: e.option().map(str::to_string),
            reason: e.reason().to_string(),
            wrong_type,
        }
    }
}

/// What the conversion reads of a JavaScript value: its type, and its content for the
/// types that convert. A trait so that the tests run without Node.
trait JsRead: Sized {
    /// napi's error; none in the tests.
    type Error;
    fn type_of(&self) -> Result<ValueType, Self::Error>;
    fn is_array(&self) -> Result<bool, Self::Error>;
    fn number(&self) -> Result<f64, Self::Error>;
    fn text(&self) -> Result<String, Self::Error>;
    fn boolean(&self) -> Result<bool, Self::Error>;
    /// The elements of an array (`None`: a hole or `undefined`).
    fn elements(&self) -> Result<Vec<Option<Self>>, Self::Error>;
}

impl JsRead for Unknown<'_> {
    type Error = napi::Error;
    fn type_of(&self) -> napi::Result<ValueType> {
        self.get_type()
    }
    fn is_array(&self) -> napi::Result<bool> {
        JsValue::is_array(self)
    }
    fn number(&self) -> napi::Result<f64> {
        // SAFETY: called for a value of type Number only (see `option_value`).
        unsafe { self.cast::<f64>() }
    }
    fn text(&self) -> napi::Result<String> {
        // SAFETY: called for a value of type String only.
        unsafe { self.cast::<String>() }
    }
    fn boolean(&self) -> napi::Result<bool> {
        // SAFETY: called for a value of type Boolean only.
        unsafe { self.cast::<bool>() }
    }
    fn elements(&self) -> napi::Result<Vec<Option<Self>>> {
        // SAFETY: called for an array only.
        let array = unsafe { self.cast::<Array>() }?;
        (0..array.len()).map(|i| array.get::<Unknown>(i)).collect()
    }
}

/// A JavaScript value as the core's [`OptionValue`], by its JavaScript type only:
/// number -> `Number`, string -> `Text`, boolean -> `Bool`, null -> `Null`, array ->
/// `List` (element by element). `Err`: the JavaScript type of a value (or element) that has none.
fn option_value<V: JsRead>(v: &V) -> Result<Result<OptionValue, &'static str>, V::Error> {
    Ok(Ok(match v.type_of()? {
        ValueType::Null => OptionValue::Null,
        ValueType::Number => OptionValue::Number(v.number()?),
        ValueType::String => OptionValue::Text(v.text()?),
        ValueType::Boolean => OptionValue::Bool(v.boolean()?),
        ValueType::Object if v.is_array()? => {
            let mut items = Vec::new();
            for item in v.elements()? {
                match item.map(|i| option_value(&i)).transpose()? {
                    Some(Ok(value)) => items.push(value),
                    Some(Err(t)) => return Ok(Err(t)),
                    None => return Ok(Err("undefined")),
                }
            }
            OptionValue::List(items)
        }
        other => return Ok(Err(js_type_name(other))),
    }))
}

fn js_type_name(t: ValueType) -> &'static str {
    match t {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "boolean",
        ValueType::Number => "number",
        ValueType::String => "string",
        ValueType::Symbol => "symbol",
        ValueType::Object => "object",
        ValueType::Function => "function",
        ValueType::BigInt => "bigint",
        _ => "a value of another type",
    }
}

/// An option as the addon received it: its schema name and its value converted by
/// [`option_value`] (`Err`: the JavaScript type of a value that has none).
pub(crate) type Converted = (String, Result<OptionValue, &'static str>);

/// Where the `SHUTDOWN_*` variables are read.
pub(crate) type EnvSource<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The core builder of a configuration: `options` (schema name, value converted by
/// [`option_value`]) applied in order with [`Builder::set`], then, with `env`, the
/// `SHUTDOWN_*` variables read through it ([`Builder::env_from`]: they win over the
/// options, as a deployment's budgets should). No defaults, no checks of its own.
pub(crate) fn configure(
    options: Vec<Converted>,
    manual_clock: bool,
    env: Option<EnvSource<'_>>,
) -> Result<Builder, NativeConfigError> {
    let mut b = Shutdown::builder();
    for (name, value) in options {
        let value = value.map_err(|t| NativeConfigError {
            // The core's own name for its option, unknown or not.
            option: option_spec(&name).map(|s| s.name.to_string()),
            reason: format!("{t} is not a value of this option"),
            field: name.clone(),
            wrong_type: true,
        })?;
        b = b
            .set(&name, value.clone())
            .map_err(|e| NativeConfigError::of(&e, Some(&value)))?;
    }
    if let Some(get) = env {
        b = b
            .env_from(get)
            .map_err(|e| NativeConfigError::of(&e, None))?;
    }
    if manual_clock {
        b = b.manual_clock();
    }
    Ok(b)
}

/// The options as `index.js` hands them over, converted, or the refusal of one.
pub(crate) fn converted(options: &[(String, Unknown<'_>)]) -> napi::Result<Vec<Converted>> {
    options
        .iter()
        .map(|(name, v)| Ok((name.clone(), option_value(v)?)))
        .collect()
}

fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The process's `SHUTDOWN_*` variables, when asked for. Node's `process.env` writes
/// through to the process environment on the main thread (a worker's is its own copy).
pub(crate) fn env_source(env: bool) -> Option<EnvSource<'static>> {
    env.then_some(&process_env as EnvSource<'static>)
}

/// Checks a configuration with the core, without building: `null` when valid,
/// otherwise the core's refusal. `options`: `[schemaName, value]` pairs, applied in
/// order; `env`: then apply the `SHUTDOWN_*` variables.
#[napi(catch_unwind)]
pub fn validate_options(
    options: Vec<(String, Unknown<'_>)>,
    env: bool,
) -> napi::Result<Option<NativeConfigError>> {
    Ok(configure(converted(&options)?, false, env_source(env))
        .and_then(|b| b.config().map_err(|e| NativeConfigError::of(&e, None)))
        .err())
}

/// The schema's option names and their environment variables, in the core's order
/// (`[name, variable]` pairs): what `index.js` maps its option names to.
#[napi(catch_unwind)]
pub fn option_names() -> Vec<(String, String)> {
    OPTIONS
        .iter()
        .map(|s| (s.name.to_string(), s.env.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A JavaScript value, for the conversion without Node.
    #[derive(Clone)]
    enum Js {
        Undefined,
        Null,
        Bool(bool),
        Num(f64),
        Str(&'static str),
        Arr(Vec<Js>),
        Obj,
    }

    impl JsRead for Js {
        type Error = std::convert::Infallible;
        fn type_of(&self) -> Result<ValueType, Self::Error> {
            Ok(match self {
                Js::Undefined => ValueType::Undefined,
                Js::Null => ValueType::Null,
                Js::Bool(_) => ValueType::Boolean,
                Js::Num(_) => ValueType::Number,
                Js::Str(_) => ValueType::String,
                Js::Arr(_) | Js::Obj => ValueType::Object,
            })
        }
        fn is_array(&self) -> Result<bool, Self::Error> {
            Ok(matches!(self, Js::Arr(_)))
        }
        fn number(&self) -> Result<f64, Self::Error> {
            match self {
                Js::Num(n) => Ok(*n),
                _ => unreachable!("read as a number"),
            }
        }
        fn text(&self) -> Result<String, Self::Error> {
            match self {
                Js::Str(t) => Ok(t.to_string()),
                _ => unreachable!("read as a string"),
            }
        }
        fn boolean(&self) -> Result<bool, Self::Error> {
            match self {
                Js::Bool(b) => Ok(*b),
                _ => unreachable!("read as a boolean"),
            }
        }
        fn elements(&self) -> Result<Vec<Option<Self>>, Self::Error> {
            match self {
                Js::Arr(items) => Ok(items
                    .iter()
                    .map(|i| (!matches!(i, Js::Undefined)).then(|| i.clone()))
                    .collect()),
                _ => unreachable!("read as an array"),
            }
        }
    }

    fn conv(v: Js) -> Result<OptionValue, &'static str> {
        option_value(&v).unwrap()
    }

    #[test]
    fn javascript_values_convert_by_their_type_only() {
        assert_eq!(conv(Js::Null), Ok(OptionValue::Null));
        assert_eq!(conv(Js::Num(1.5)), Ok(OptionValue::Number(1.5)));
        assert!(matches!(conv(Js::Num(f64::NAN)), Ok(OptionValue::Number(n)) if n.is_nan()));
        assert_eq!(conv(Js::Str("10s")), Ok(OptionValue::Text("10s".into())));
        assert_eq!(
            conv(Js::Arr(vec![Js::Str("SIGTERM"), Js::Num(2.0), Js::Null])),
            Ok(OptionValue::List(vec![
                OptionValue::Text("SIGTERM".into()),
                OptionValue::Number(2.0),
                OptionValue::Null
            ]))
        );
        assert_eq!(conv(Js::Bool(true)), Ok(OptionValue::Bool(true)));
        assert_eq!(conv(Js::Obj), Err("object"));
        assert_eq!(conv(Js::Undefined), Err("undefined"));
        assert_eq!(
            conv(Js::Arr(vec![Js::Str("SIGTERM"), Js::Obj])),
            Err("object")
        );
        assert_eq!(conv(Js::Arr(vec![Js::Undefined])), Err("undefined"));
    }

    fn set(pairs: &[(&str, Js)]) -> Result<Builder, NativeConfigError> {
        let options = pairs
            .iter()
            .map(|(n, v)| (n.to_string(), conv(v.clone())))
            .collect();
        configure(options, false, None).and_then(|b| {
            b.config()
                .map(drop)
                .map_err(|e| NativeConfigError::of(&e, None))
                .map(|()| b)
        })
    }

    fn refusal(pairs: &[(&str, Js)]) -> (String, Option<String>, bool) {
        let e = set(pairs).unwrap_err();
        (e.field, e.option, e.wrong_type)
    }

    fn pair(field: &str, option: &str, wrong_type: bool) -> (String, Option<String>, bool) {
        (field.to_string(), Some(option.to_string()), wrong_type)
    }

    #[test]
    fn options_are_the_cores_schema_and_nothing_else() {
        let c = set(&[]).unwrap().config().unwrap();
        assert_eq!(
            c,
            Shutdown::builder().config().unwrap(),
            "no options: the core's defaults"
        );
        let c = set(&[
            ("drain_delay_ms", Js::Num(250.0)),
            ("announce_probes", Js::Num(3.0)),
            ("drain_timeout_ms", Js::Num(1000.0)),
            ("close_timeout_ms", Js::Num(500.0)),
            ("grace_period_ms", Js::Null),
            ("force_at", Js::Null),
            ("terminate_at", Js::Num(4.0)),
            ("same_signal_window_ms", Js::Num(0.0)),
            ("forced_exit_code", Js::Num(9.0)),
            ("close_strategy", Js::Str("gradual")),
            ("signals", Js::Arr(vec![Js::Str("SIGTERM")])),
            ("connection_grace_ms", Js::Num(40.0)),
        ])
        .unwrap()
        .config()
        .unwrap();
        assert_eq!(c.connection_grace(), Duration::from_millis(40));
        assert_eq!(c.drain_delay(), Duration::from_millis(250));
        assert_eq!(c.announce_probes(), Some(3));
        assert_eq!(c.drain_timeout(), Duration::from_secs(1));
        assert_eq!(c.close_timeout(), Duration::from_millis(500));
        assert_eq!(c.grace_period(), None);
        assert_eq!(c.escalation().force_at, None);
        assert_eq!(c.escalation().terminate_at, Some(4));
        assert_eq!(c.escalation().same_signal_window, Duration::ZERO);
        assert_eq!(c.forced_exit_code(), 9);
        assert_eq!(c.close_strategy(), libshutdown::CloseStrategy::Gradual);
        assert_eq!(c.signals(), &[15]);
    }

    #[test]
    fn refusals_are_the_cores_with_the_option_to_blame() {
        // An unknown close strategy is refused, never taken for "immediate".
        assert_eq!(
            refusal(&[("close_strategy", Js::Str("slow"))]),
            pair("close_strategy", "close_strategy", false)
        );
        assert_eq!(
            refusal(&[("close_strategy", Js::Num(1.0))]),
            pair("close_strategy", "close_strategy", true)
        );
        assert_eq!(
            refusal(&[("drain_timeout_ms", Js::Str("10s"))]),
            pair("drain_timeout_ms", "drain_timeout_ms", true)
        );
        assert_eq!(
            refusal(&[("drain_timeout_ms", Js::Num(-1.0))]),
            pair("drain_timeout_ms", "drain_timeout_ms", false)
        );
        assert_eq!(
            refusal(&[("grace_period_ms", Js::Obj)]),
            pair("grace_period_ms", "grace_period_ms", true),
            "a type JavaScript cannot hand over names the option too"
        );
        assert_eq!(
            refusal(&[("grace_period_ms", Js::Bool(true))]),
            pair("grace_period_ms", "grace_period_ms", true)
        );
        assert_eq!(
            refusal(&[("systemd_notify", Js::Str("on"))]),
            pair("systemd_notify", "systemd_notify", true)
        );
        assert_eq!(
            refusal(&[("preset", Js::Str("k8s"))]),
            pair("preset", "preset", false)
        );
        let c = set(&[
            ("preset", Js::Str("pm2")),
            ("systemd_notify", Js::Bool(true)),
        ])
        .unwrap()
        .config()
        .unwrap();
        assert_eq!(c.grace_period(), Some(Duration::from_millis(1600)));
        assert!(c.systemd_notify());
        assert_eq!(
            refusal(&[("signals", Js::Arr(vec![Js::Obj]))]),
            pair("signals", "signals", true)
        );
        // Refused with the whole configuration: the builder's field, the schema's option.
        assert_eq!(
            refusal(&[("drain_timeout_ms", Js::Num(0.0))]),
            pair("drain_timeout", "drain_timeout_ms", false)
        );
        assert_eq!(
            refusal(&[("drain_timeout_ms", Js::Num(29_000.0))]),
            pair("grace_period", "grace_period_ms", false)
        );
        assert_eq!(
            refusal(&[("force_at", Js::Num(3.0)), ("terminate_at", Js::Num(3.0))]),
            pair("escalation", "terminate_at", false)
        );
        assert_eq!(
            refusal(&[("same_signal_window_ms", Js::Num(90_000_000.0))]),
            pair("same_signal_window", "same_signal_window_ms", false)
        );
        let e = set(&[("drainTimeout", Js::Num(1.0))]).unwrap_err();
        assert_eq!((e.field.as_str(), e.option), ("options", None));
    }

    #[test]
    fn environment_variables_apply_over_the_options_and_name_the_variable() {
        let get = |k: &str| (k == "SHUTDOWN_DRAIN_TIMEOUT_MS").then(|| "12000".to_string());
        let options = vec![(
            "drain_timeout_ms".to_string(),
            Ok(OptionValue::Number(1000.0)),
        )];
        let c = configure(options, true, Some(&get))
            .unwrap()
            .config()
            .unwrap();
        assert_eq!(c.drain_timeout(), Duration::from_secs(12));
        let get = |k: &str| (k == "SHUTDOWN_CLOSE_STRATEGY").then(|| "slow".to_string());
        let e = configure(Vec::new(), false, Some(&get)).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.option.as_deref(), e.wrong_type),
            ("SHUTDOWN_CLOSE_STRATEGY", Some("close_strategy"), false)
        );
    }
}
