//! Strict `application/x-www-form-urlencoded` parsing for query strings and
//! POST bodies: `+` is a space, `%XX` is a byte, and the result must be UTF-8.
//! Lossy decoding would let two different inputs look alike, so invalid UTF-8
//! is an error.

use percent_encoding::percent_decode;

/// Longest query string or form body accepted by the token endpoint.
pub const MAX_FORM_LEN: usize = 16 * 1024;
/// Most fields accepted in one form.
pub const MAX_FIELDS: usize = 128;

/// Why a form could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("request parameters are too long (at most {MAX_FORM_LEN} bytes)")]
    TooLong,
    #[error("too many request parameters (at most {MAX_FIELDS})")]
    TooMany,
    #[error("request parameter is not valid UTF-8")]
    NotUtf8,
}

/// Decoded fields, in order, repeats kept.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(raw: &[u8]) -> Result<Form, FormError> {
        if raw.len() > MAX_FORM_LEN {
            return Err(FormError::TooLong);
        }
        let mut fields = Vec::new();
        for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            if fields.len() == MAX_FIELDS {
                return Err(FormError::TooMany);
            }
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            fields.push((decode(key)?, decode(value)?));
        }
        Ok(Form(fields))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(raw: &[u8]) -> Result<String, FormError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| FormError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_repeats_spaces_and_escapes() {
        let form = Form::parse(b"scope=a%3Ab+c&scope=d&service=reg%20x&flag&=v").unwrap();
        assert_eq!(form.all("scope").collect::<Vec<_>>(), ["a:b c", "d"]);
        assert_eq!(form.get("service"), Some("reg x"));
        assert_eq!(form.get("flag"), Some(""));
        assert_eq!(form.get(""), Some("v"));
        assert_eq!(form.get("missing"), None);
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Form::parse(b"a=%FF").unwrap_err(), FormError::NotUtf8);
        assert_eq!(Form::parse(b"a=\xC3").unwrap_err(), FormError::NotUtf8);
        assert_eq!(
            Form::parse(&vec![b'a'; MAX_FORM_LEN + 1]).unwrap_err(),
            FormError::TooLong
        );
        let many = "a=1&".repeat(MAX_FIELDS + 1);
        assert_eq!(
            Form::parse(many.as_bytes()).unwrap_err(),
            FormError::TooMany
        );
        // A stray `%` is kept literally, as browsers do.
        assert_eq!(Form::parse(b"a=100%").unwrap().get("a"), Some("100%"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_bounds_fields(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            if let Ok(form) = Form::parse(&raw) {
                proptest::prop_assert!(form.0.len() <= MAX_FIELDS);
            }
        }
    }
}
