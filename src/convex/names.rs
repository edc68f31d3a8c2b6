//! Name rules: identifiers (table and component names) and field names.

/// Longest identifier, in bytes.
pub const MAX_IDENTIFIER_LEN: usize = 64;
/// Longest field name, in bytes.
pub const MAX_FIELD_NAME_LEN: usize = 1024;

/// Convex's refusal of `name` where only a user table may go: a name
/// starting with `_` is a system table's (`_storage`, `_tables`, ...).
pub fn system_table_refusal(name: &str) -> Option<String> {
    name.starts_with('_')
        .then(|| format!("Invalid table name {name} starts with metadata prefix '_'"))
}

/// Checks a table or component name; the error is Convex's reason text.
pub fn check_identifier(name: &str) -> Result<(), String> {
    let Some(first) = name.chars().next() else {
        return Err("Identifier cannot be empty".into());
    };
    if name.len() > MAX_IDENTIFIER_LEN {
        return Err(format!(
            "Identifier is too long ({} > maximum {MAX_IDENTIFIER_LEN})",
            name.len()
        ));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(format!(
            "Invalid first character '{first}' in {name}: Identifiers must start with an alphabetic character or underscore"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(format!(
            "Identifier {name} has invalid character '{c}': Identifiers can only contain alphanumeric characters or underscores"
        ));
    }
    if name.bytes().all(|b| b == b'_') {
        return Err(format!(
            "Identifier {name} cannot have exclusively underscores"
        ));
    }
    Ok(())
}

/// True for the names of system tables (a leading `_`).
pub fn is_system_table(name: &str) -> bool {
    name.starts_with('_')
}

/// Checks an object key at any depth; the error is Convex's reason text.
///
/// This is on the hot path: the common case is one pass over ASCII bytes.
#[inline]
pub fn check_field_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    if bytes.first() == Some(&b'$') {
        return Err(format!(
            "Field name {name} starts with '$', which is reserved."
        ));
    }
    if bytes.len() > MAX_FIELD_NAME_LEN {
        return Err(format!(
            "Field name is too long ({} > maximum {MAX_FIELD_NAME_LEN})",
            bytes.len()
        ));
    }
    if !bytes.iter().all(|b| (0x20..=0x7E).contains(b)) {
        let c = name
            .chars()
            .find(|c| !(' '..='~').contains(c))
            .unwrap_or('?');
        return Err(format!(
            "Field name {name} has invalid character '{c}': Field names can only contain non-control ASCII characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for ok in ["users", "_storage", "a1", "A_b", &"x".repeat(64)] {
            assert_eq!(check_identifier(ok), Ok(()), "{ok}");
        }
        assert_eq!(
            check_identifier("").unwrap_err(),
            "Identifier cannot be empty"
        );
        assert!(check_identifier("1abc")
            .unwrap_err()
            .starts_with("Invalid first character '1' in 1abc"));
        assert!(check_identifier("Users Table")
            .unwrap_err()
            .contains("has invalid character ' '"));
        assert_eq!(
            check_identifier(&"x".repeat(65)).unwrap_err(),
            "Identifier is too long (65 > maximum 64)"
        );
        assert_eq!(
            check_identifier("___").unwrap_err(),
            "Identifier ___ cannot have exclusively underscores"
        );
        assert!(check_identifier("héllo").is_err());
    }

    #[test]
    fn field_names() {
        for ok in ["", "a", "_x", "with space", "~!@#", &"f".repeat(1024)] {
            assert_eq!(check_field_name(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(
            check_field_name("$integer").unwrap_err(),
            "Field name $integer starts with '$', which is reserved."
        );
        assert!(check_field_name("tab\there")
            .unwrap_err()
            .contains("invalid character '\t'"));
        assert!(check_field_name("é").is_err());
        assert_eq!(
            check_field_name(&"f".repeat(1025)).unwrap_err(),
            "Field name is too long (1025 > maximum 1024)"
        );
    }
}
