//! Usage errors and the flag values the commands accept. The CLI's exit contract (README,
//! "Untrusted input"): a usage error exits 2 with one line (and at most a one-line hint), every
//! other failure exits 1 with one line, and a closed stdout ends the process quietly.

use std::fmt::Display;
use std::str::FromStr;

/// An error in how the command was called (a flag's value, a missing flag): exit status 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// A usage error (exit status 2) with this message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// Whether `error` (or anything in its chain) is a usage error.
pub fn is_usage(error: &anyhow::Error) -> bool {
    error.chain().any(|e| e.is::<Usage>())
}

/// A flag parser for integers of at least `min` (`value_parser = at_least(1usize)`).
pub fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |text: &str| {
        let value: T = text.trim().parse().map_err(|_| format!("expected a whole number of at least {min}"))?;
        if value < min {
            return Err(format!("must be at least {min}"));
        }
        Ok(value)
    }
}

/// A flag parser for integers from `min` to `max`.
pub fn between<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |text: &str| {
        let value: T = text.trim().parse().map_err(|_| format!("expected a whole number from {min} to {max}"))?;
        if value < min || value > max {
            return Err(format!("must be from {min} to {max}"));
        }
        Ok(value)
    }
}

/// The range a float flag must lie in; `open` excludes the bound.
#[derive(Clone, Copy)]
pub enum Bound {
    Closed(f64),
    Open(f64),
    None,
}

/// A flag parser for finite floats within `lo` and `hi` (`value_parser = float(Bound::Open(0.0), Bound::None)`).
pub fn float(lo: Bound, hi: Bound) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let range = describe(lo, hi);
        let value: f64 = text.trim().parse().map_err(|_| format!("expected a number {range}"))?;
        let low_ok = match lo {
            Bound::Closed(b) => value >= b,
            Bound::Open(b) => value > b,
            Bound::None => true,
        };
        let high_ok = match hi {
            Bound::Closed(b) => value <= b,
            Bound::Open(b) => value < b,
            Bound::None => true,
        };
        if !value.is_finite() || !low_ok || !high_ok {
            return Err(format!("must be a finite number {range}"));
        }
        Ok(value)
    }
}

fn describe(lo: Bound, hi: Bound) -> String {
    let low = match lo {
        Bound::Closed(b) => format!("at least {b}"),
        Bound::Open(b) => format!("above {b}"),
        Bound::None => String::new(),
    };
    let high = match hi {
        Bound::Closed(b) => format!("at most {b}"),
        Bound::Open(b) => format!("below {b}"),
        Bound::None => String::new(),
    };
    match (low.is_empty(), high.is_empty()) {
        (false, false) => format!("{low} and {high}"),
        (false, true) => low,
        (true, false) => high,
        (true, true) => String::new(),
    }
}

/// `--device`: its form, as clip-model's device names have it (whether the device is compiled
/// in and present is checked when it is opened).
pub fn device_name(text: &str) -> Result<String, String> {
    match clip_model::device::split_name(text) {
        Ok(_) => Ok(text.to_string()),
        Err(clip_model::Error::Input(message)) => Err(message),
        Err(other) => Err(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_refuse_what_is_outside() {
        let batch = at_least(1usize);
        assert_eq!(batch("3"), Ok(3));
        assert_eq!(batch("0").unwrap_err(), "must be at least 1");
        assert!(batch("-1").is_err() && batch("x").is_err());
        let beta = float(Bound::Closed(0.0), Bound::Open(1.0));
        assert_eq!(beta("0.9"), Ok(0.9));
        assert_eq!(beta("1.5").unwrap_err(), "must be a finite number at least 0 and below 1");
        assert!(beta("1").is_err() && beta("NaN").is_err() && beta("-0.1").is_err());
        let lr = float(Bound::Open(0.0), Bound::None);
        assert!(lr("-1").is_err() && lr("0").is_err() && lr("inf").is_err());
        assert_eq!(lr("1e-3"), Ok(1e-3));
        assert_eq!(between(8usize, 4096)("100000").unwrap_err(), "must be from 8 to 4096");
    }

    #[test]
    fn device_names() {
        for ok in ["cpu", "best", "wgpu", "cuda", "cuda:1"] {
            assert_eq!(device_name(ok).as_deref(), Ok(ok));
        }
        for bad in ["gpu", "cuda:x", "", "CPU"] {
            assert!(device_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn usage_errors_are_found_in_a_chain() {
        let e = usage("--batch must be at least 1");
        assert!(is_usage(&e.context("embed")));
        assert!(!is_usage(&anyhow::anyhow!("other")));
    }
}
