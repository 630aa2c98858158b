//! Database URLs: which backend a URL names, and its text without the
//! password (for errors and logs). Pure functions.

use std::path::PathBuf;

/// What a database URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// A SQLite file, created if missing (its parent directories too).
    SqliteFile(PathBuf),
    /// A private in-memory SQLite database (gone when the store closes).
    SqliteMemory,
    /// A PostgreSQL server; the URL goes to sqlx as it is.
    Postgres,
}

/// Sorts a URL: `sqlite::memory:`, `sqlite://PATH` (or `sqlite:PATH`;
/// the path is taken literally, relative paths resolve against the working
/// directory), `postgres://…` or `postgresql://…`.
pub(crate) fn parse(url: &str) -> Result<Target, &'static str> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Target::Postgres);
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err("expected sqlite://PATH, sqlite::memory: or postgres://…");
    };
    let path = rest.strip_prefix("//").unwrap_or(rest);
    if path == ":memory:" {
        return Ok(Target::SqliteMemory);
    }
    if path.is_empty() {
        return Err("no file path after sqlite://");
    }
    if path.contains('?') {
        return Err("query parameters are not supported for SQLite");
    }
    Ok(Target::SqliteFile(PathBuf::from(path)))
}

/// The URL with any password replaced by `***`: the one in the user-info
/// part (`user:secret@host`) and `password=`/`sslpassword=` query
/// parameters. Errs on the side of hiding: a URL it cannot read keeps only
/// its scheme.
pub fn redact(url: &str) -> String {
    if url.starts_with("sqlite:") {
        // A file path or `:memory:`: no credentials.
        return url.to_string();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return match url.split_once(':') {
            Some((scheme, _)) => format!("{scheme}:<redacted>"),
            None => "<redacted>".to_string(),
        };
    };
    // The user-info ends at the last `@` (a password may hold `@`, `/`, `?`).
    let rest = match rest.rfind('@') {
        Some(at) => {
            let (userinfo, host_and_more) = rest.split_at(at);
            match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***{host_and_more}"),
                None => rest.to_string(),
            }
        }
        // No user-info; but `host:secret` (a port that is not a number) may
        // be a mistyped `user:secret`.
        None => {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            match authority.rsplit_once(':') {
                Some((host, port)) if !port.ends_with(']') && !port.bytes().all(|b| b.is_ascii_digit()) => {
                    format!("{host}:***{tail}")
                }
                _ => rest.to_string(),
            }
        }
    };
    let rest = match rest.split_once('?') {
        Some((before, query)) => {
            let params: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _))
                        if key.eq_ignore_ascii_case("password")
                            || key.eq_ignore_ascii_case("sslpassword") =>
                    {
                        format!("{key}=***")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{before}?{}", params.join("&"))
        }
        None => rest,
    };
    format!("{scheme}://{rest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls() {
        assert_eq!(parse("sqlite::memory:"), Ok(Target::SqliteMemory));
        assert_eq!(parse("sqlite://:memory:"), Ok(Target::SqliteMemory));
        assert_eq!(
            parse("sqlite://data/huifang.db"),
            Ok(Target::SqliteFile(PathBuf::from("data/huifang.db")))
        );
        assert_eq!(
            parse("sqlite:///var/lib/huifang/huifang.db"),
            Ok(Target::SqliteFile(PathBuf::from("/var/lib/huifang/huifang.db")))
        );
        assert_eq!(parse("sqlite:huifang.db"), Ok(Target::SqliteFile(PathBuf::from("huifang.db"))));
        assert!(parse("sqlite://").is_err());
        assert!(parse("sqlite://a.db?mode=ro").is_err());
    }

    #[test]
    fn postgres_and_other_urls() {
        assert_eq!(parse("postgres://u@h/db"), Ok(Target::Postgres));
        assert_eq!(parse("postgresql://h/db"), Ok(Target::Postgres));
        assert!(parse("mysql://h/db").is_err());
        assert!(parse("huifang.db").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn redaction() {
        let cases = [
            ("postgres://u:secret@h:5432/db", "postgres://u:***@h:5432/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://h/db", "postgres://h/db"),
            ("postgresql://u:p%40ss@h/db?sslmode=disable", "postgresql://u:***@h/db?sslmode=disable"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            ("postgres://u:p/ss?x@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?user=u&password=secret&sslmode=disable",
                "postgres://h/db?user=u&password=***&sslmode=disable",
            ),
            ("postgres://h/db?PASSWORD=s&sslpassword=t", "postgres://h/db?PASSWORD=***&sslpassword=***"),
            ("sqlite://data/huifang.db", "sqlite://data/huifang.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres:u:secret@h", "postgres:<redacted>"),
            ("u:secret@h", "u:<redacted>"),
            ("secret", "<redacted>"),
            ("postgres://[::1]:5432/db", "postgres://[::1]:5432/db"),
            ("postgres://[::1]/db", "postgres://[::1]/db"),
            ("postgres://h:5432/db", "postgres://h:5432/db"),
        ];
        for (url, want) in cases {
            assert_eq!(redact(url), want, "{url}");
        }
    }

    #[test]
    fn redaction_never_keeps_the_password() {
        for url in [
            "postgres://u:hunter2@h/db",
            "postgres://u:hun@ter2@h/db",
            "postgres://u:hunter2@h/db?password=hunter2",
            "postgres://h/db?password=hunter2",
            "postgres:u:hunter2@h",
            "postgres://u:hunter2",
        ] {
            assert!(!redact(url).contains("hunter2"), "{url} → {}", redact(url));
        }
    }
}
