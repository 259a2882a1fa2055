//! The `[[users]]` TOML entry `wrenmq user add` prints or appends, kept here so its quoting is
//! tested and always loads back.

/// A ready `[[users]]` entry for `name` with `roles` and a PHC `password_hash`.
pub fn user_entry(name: &str, roles: &[String], password_hash: &str) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let roles: Vec<String> = roles.iter().map(|r| quote(r)).collect();
    format!(
        "[[users]]\nname = {}\npassword-hash = {}\nroles = [{}]\n",
        quote(name),
        quote(password_hash),
        roles.join(", ")
    )
}

/// Splits a `--roles a,b` list, trimming blanks and dropping empty items.
pub fn parse_roles(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UsersFile;

    #[test]
    fn entry_loads_back_with_awkward_names() {
        let roles = parse_roles(" admin, ops ,,\"q\" ");
        assert_eq!(roles, ["admin", "ops", "\"q\""]);
        let text = user_entry("bob \"the\" admin", &roles, "$argon2id$v=19$x");
        let file: UsersFile = toml::from_str(&text).unwrap();
        assert_eq!(file.users[0].name, "bob \"the\" admin");
        assert_eq!(file.users[0].roles, roles);
        assert_eq!(
            file.users[0].password_hash.as_deref(),
            Some("$argon2id$v=19$x")
        );
    }
}
