use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),

    /// A spec or trigger field is wrong; `field` is the path a user would edit.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },

    #[error("{0} not found")]
    NotFound(String),

    #[error("scaler {scaler}: {message}")]
    Scaler { scaler: String, message: String },

    #[error("actuation of {target}: {message}")]
    Actuation { target: String, message: String },

    /// The caller may not do this (no session, another tenant, too low a role). The message
    /// says why and never carries a credential.
    #[error("refused: {0}")]
    Refused(String),

    /// Another instance holds the leader lease; this one only watches.
    #[error("standby: another instance holds the leader lease")]
    Standby,
}

impl Error {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid { field: field.into(), message: message.into() }
    }

    /// A short, stable label for metrics (`swell_errors_total{kind=…}`).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Db(_) => "db",
            Error::Invalid { .. } => "invalid",
            Error::NotFound(_) => "not_found",
            Error::Scaler { .. } => "scaler",
            Error::Actuation { .. } => "actuation",
            Error::Standby => "standby",
            Error::Refused(_) => "refused",
        }
    }
}
