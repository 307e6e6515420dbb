//! Key builders for the single-table design (see the table in `repo`).

pub const A: &str = "A";

pub fn pad(id: i64) -> String {
    format!("{id:010}")
}
pub fn user(u: i64) -> String {
    format!("USER#{}", pad(u))
}
pub fn email(e: &str) -> String {
    format!("EMAIL#{}", e.to_lowercase())
}
pub fn pract(p: i64) -> String {
    format!("PRACT#{}", pad(p))
}
pub fn org(o: i64) -> String {
    format!("ORG#{}", pad(o))
}
pub fn patient(p: i64) -> String {
    format!("PAT#{}", pad(p))
}
pub fn pat_ident(system: &str, value: &str) -> String {
    format!("PATIDENT#{system}|{value}")
}
pub fn study(s: i64) -> String {
    format!("STUDY#{}", pad(s))
}
pub fn code(c: i64) -> String {
    format!("CODE#{}", pad(c))
}
pub fn code_key(system: &str, code: &str) -> String {
    format!("CODEKEY#{system}|{code}")
}
pub fn ds(d: i64) -> String {
    format!("DS#{}", pad(d))
}
pub fn client(c: i64) -> String {
    format!("CLIENT#{}", pad(c))
}
pub fn client_id(cid: &str) -> String {
    format!("CLIENTID#{cid}")
}
pub fn inv_token(hash: &str) -> String {
    format!("INVTOKEN#{hash}")
}
pub fn auth_code(hash: &str) -> String {
    format!("AUTHCODE#{hash}")
}
pub fn refresh(hash: &str) -> String {
    format!("REFRESH#{hash}")
}
/// A link sort key: `{prefix}{padded id}`.
pub fn link(prefix: &str, id: i64) -> String {
    format!("{prefix}{}", pad(id))
}
pub fn consent(study: i64, code: i64) -> String {
    format!("CONSENT#{}#{}", pad(study), pad(code))
}
/// Index sort key that orders by a name, case-insensitively, then by id.
pub fn by_name(name: &str, id: i64) -> String {
    let mut n: String = name.to_lowercase().chars().filter(|c| *c != '\0').take(200).collect();
    if n.is_empty() {
        n.push(' ');
    }
    format!("{n}#{}", pad(id))
}
