//! The bearer token a registry verifies: claims, header and signature.

use serde::Serialize;
use time::OffsetDateTime;

use super::keys::Signer;
use super::scope::Scope;

/// `nbf` lies this many seconds before `iat` to absorb clock skew.
const NOT_BEFORE_SKEW: i64 = 5;

/// One entry of the `access` claim.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<&'static str>,
}

impl From<&Scope> for Access {
    fn from(scope: &Scope) -> Self {
        Access {
            resource_type: scope.resource_type.to_string(),
            name: scope.name.clone(),
            actions: scope.actions.iter().map(|a| a.as_str()).collect(),
        }
    }
}

/// The claim set. `aud` is a single string: registry 2.8 rejects an array.
#[derive(Debug, Serialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<Access>,
}

impl Claims {
    /// Claims for `subject` (empty when anonymous) valid for `ttl` seconds.
    pub fn new(
        issuer: &str,
        subject: &str,
        audience: &str,
        granted: &[Scope],
        now: OffsetDateTime,
        ttl: u64,
    ) -> Claims {
        let iat = now.unix_timestamp();
        let jti: [u8; 18] = rand::random();
        Claims {
            iss: issuer.to_owned(),
            sub: subject.to_owned(),
            aud: audience.to_owned(),
            exp: iat + ttl as i64,
            nbf: iat - NOT_BEFORE_SKEW,
            iat,
            jti: data_encoding::BASE64URL_NOPAD.encode(&jti),
            access: granted
                .iter()
                .filter(|s| !s.actions.is_empty())
                .map(Access::from)
                .collect(),
        }
    }
}

/// Signs `claims` with ES256, sending the `x5c` chain and the libtrust `kid`.
pub fn sign(signer: &Signer, claims: &Claims) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.typ = Some("JWT".to_owned());
    header.kid = Some(signer.kid.clone());
    header.x5c = Some(signer.x5c.clone());
    jsonwebtoken::encode(&header, claims, &signer.key)
}
