//! Error collection: every problem is kept and reported together, each
//! spanned at the offending tokens and carrying a help line.

use std::fmt::Display;

use proc_macro2::Span;
use quote::ToTokens;

/// Collects errors; [`Errors::finish`] combines them into one.
#[derive(Default)]
pub(crate) struct Errors {
    combined: Option<syn::Error>,
}

impl Errors {
    /// No errors yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds an error as it is (e.g. a syn parse error).
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.combined {
            Some(all) => all.combine(error),
            None => self.combined = Some(error),
        }
    }

    /// Adds an error spanned at `tokens`, with a help line.
    pub(crate) fn spanned(
        &mut self,
        tokens: impl ToTokens,
        message: impl Display,
        help: impl Display,
    ) {
        self.push(syn::Error::new_spanned(tokens, with_help(message, help)));
    }

    /// Adds an error at `span`, with a help line.
    pub(crate) fn at(&mut self, span: Span, message: impl Display, help: impl Display) {
        self.push(syn::Error::new(span, with_help(message, help)));
    }

    /// Whether any error was collected.
    pub(crate) fn is_empty(&self) -> bool {
        self.combined.is_none()
    }

    /// All errors as one, or `Ok` when there were none.
    pub(crate) fn finish(self) -> Result<(), syn::Error> {
        match self.combined {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `message` followed by a `help:` line, as rustc lays them out.
pub(crate) fn with_help(message: impl Display, help: impl Display) -> String {
    format!("{message}\nhelp: {help}")
}

/// The candidate of `candidates` close to `got`, if any: the config
/// validator's algorithm, so the macro and the validator suggest the same
/// name for the same typo.
pub(crate) use elspeth_core::suggest::did_you_mean;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error() {
        let mut errors = Errors::new();
        assert!(errors.is_empty());
        errors.at(Span::call_site(), "first", "fix it");
        errors.at(Span::call_site(), "second", "fix that");
        let all: Vec<String> = errors
            .finish()
            .unwrap_err()
            .into_iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(all, ["first\nhelp: fix it", "second\nhelp: fix that"]);
    }
}
