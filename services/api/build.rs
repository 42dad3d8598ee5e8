//! Reads the routing table (`src/handlers/mod.rs`: arms like `(_, "events", "add" | "edit") =>`) into
//! `ROUTES`, from which `/openapi.json` is built: the description can never miss a route.
use std::fmt::Write as _;

fn main() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/handlers/mod.rs");
    println!("cargo:rerun-if-changed={}", path.display());
    let table = std::fs::read_to_string(&path).expect("the routing table");
    let mut routes: Vec<(bool, String, String)> = Vec::new();
    for line in table.lines() {
        let Some(rest) = line.trim_start().strip_prefix('(') else { continue };
        let Some((head, _)) = rest.split_once(") =>") else { continue };
        for pattern in head.split(") | (") {
            let parts: Vec<&str> = pattern.splitn(3, ", ").collect();
            if parts.len() != 3 || !parts[1].starts_with('"') {
                continue;
            }
            let admin = parts[0].trim() == "true";
            let controller = parts[1].trim_matches('"').to_string();
            for action in parts[2].split(" | ") {
                let action = action.trim().trim_matches('"');
                if action != "_" && !action.is_empty() {
                    routes.push((admin, controller.clone(), action.to_string()));
                }
            }
        }
    }
    routes.sort();
    routes.dedup();
    let mut out = String::from("/// `(admin prefix only, controller, action)` of every MISP-style route (from the routing table).\npub const ROUTES: &[(bool, &str, &str)] = &[\n");
    for (admin, c, a) in &routes {
        let _ = writeln!(out, "    ({admin}, {c:?}, {a:?}),");
    }
    out.push_str("];\n");
    let dest = std::path::Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("routes.rs");
    std::fs::write(dest, out).expect("write routes.rs");
}
