//! The wasm32 gate: build a module that links the core's parsers and read what it imports.
//!
//! `cargo build -p <crate> --target wasm32-unknown-unknown` alone proves that the code compiles, not
//! that it runs in a browser or a wasm runtime without a libc: a C dependency, a `getrandom` backend
//! or an `extern "C"` declaration shows up only as an import of the *linked* module, usually from
//! `env`, and instantiation then fails. So the gate builds the `matrix-oidc-wasm-check` cdylib (which
//! calls the parsers on fixed input) in release mode and reads the import section of the result.

use crate::util::{self, Result, cargo, target_dir};
use wasmparser::{Parser, Payload};

/// The package of the cdylib and the exports it must keep (proof the parsers were linked in).
const CHECK_PACKAGE: &str = "matrix-oidc-wasm-check";
const EXPECTED_EXPORT_PREFIX: &str = "check_";

/// The module's imports as `(module, name)` pairs and the names of its exported functions.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ModuleInterface {
    pub(crate) imports: Vec<(String, String)>,
    pub(crate) exports: Vec<String>,
}

/// Reads the import and export sections of a wasm module.
pub(crate) fn interface(bytes: &[u8]) -> Result<ModuleInterface> {
    let mut out = ModuleInterface::default();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a wasm module: {e}"))? {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(|e| format!("bad import section: {e}"))?;
                    out.imports
                        .push((import.module.to_owned(), import.name.to_owned()));
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| format!("bad export section: {e}"))?;
                    if export.kind == wasmparser::ExternalKind::Func {
                        out.exports.push(export.name.to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Why a module fails the gate, if it does.
pub(crate) fn problems(module: &ModuleInterface) -> Vec<String> {
    let mut problems = Vec::new();
    for (m, name) in &module.imports {
        if m == "env" {
            problems.push(format!(
                "imports `{name}` from `env` (a C symbol or libc call the host would have to provide)"
            ));
        }
    }
    if !module
        .exports
        .iter()
        .any(|e| e.starts_with(EXPECTED_EXPORT_PREFIX))
    {
        problems.push(format!(
            "exports no `{EXPECTED_EXPORT_PREFIX}*` function: the check linked nothing"
        ));
    }
    problems
}

/// Builds the check module for `wasm32-unknown-unknown` and fails on any `env` import.
pub(crate) fn gate() -> Result {
    let mut c = std::process::Command::new("rustup");
    c.args(["target", "add", "wasm32-unknown-unknown"]);
    util::run(c)?;
    let mut c = cargo();
    c.args([
        "build",
        "-p",
        CHECK_PACKAGE,
        "--release",
        "--target",
        "wasm32-unknown-unknown",
        "--locked",
    ]);
    util::run(c)?;
    let path = target_dir()
        .join("wasm32-unknown-unknown/release")
        .join(format!("{}.wasm", CHECK_PACKAGE.replace('-', "_")));
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let module = interface(&bytes)?;
    println!(
        "{}: {} KiB, {} exported checks, {} imports{}",
        path.display(),
        bytes.len() / 1024,
        module
            .exports
            .iter()
            .filter(|e| e.starts_with(EXPECTED_EXPORT_PREFIX))
            .count(),
        module.imports.len(),
        if module.imports.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                module
                    .imports
                    .iter()
                    .map(|(m, n)| format!("{m}::{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    let problems = problems(&module);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the wasm32 module {} {}",
            path.display(),
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module in the binary format: `(import "<m>" "<n>" (func))` and one exported function.
    fn module(import: Option<(&str, &str)>, export: &str) -> Vec<u8> {
        fn name(out: &mut Vec<u8>, s: &str) {
            out.push(s.len() as u8);
            out.extend_from_slice(s.as_bytes());
        }
        fn section(out: &mut Vec<u8>, id: u8, body: Vec<u8>) {
            out.push(id);
            out.push(body.len() as u8);
            out.extend(body);
        }
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // One type: () -> ().
        section(&mut m, 1, vec![1, 0x60, 0, 0]);
        let imported = u8::from(import.is_some());
        if let Some((module, field)) = import {
            let mut body = vec![1];
            name(&mut body, module);
            name(&mut body, field);
            body.extend([0x00, 0x00]);
            section(&mut m, 2, body);
        }
        // One defined function of type 0.
        section(&mut m, 3, vec![1, 0]);
        let mut body = vec![1];
        name(&mut body, export);
        body.extend([0x00, imported]);
        section(&mut m, 7, body);
        // Its body: no locals, `end`.
        section(&mut m, 10, vec![1, 2, 0, 0x0b]);
        m
    }

    #[test]
    fn a_clean_module_passes() {
        let m = interface(&module(None, "check_metadata")).unwrap();
        assert_eq!(m.exports, ["check_metadata"]);
        assert!(m.imports.is_empty());
        assert!(problems(&m).is_empty());
    }

    #[test]
    fn env_imports_are_reported_by_name() {
        let m = interface(&module(Some(("env", "memcpy")), "check_metadata")).unwrap();
        assert_eq!(m.imports, [("env".to_owned(), "memcpy".to_owned())]);
        let p = problems(&m);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("`memcpy`"), "{p:?}");
    }

    #[test]
    fn other_import_modules_are_listed_not_failed() {
        let m = interface(&module(Some(("wasi", "x")), "check_a")).unwrap();
        assert!(problems(&m).is_empty());
    }

    #[test]
    fn a_module_without_checks_fails() {
        let m = interface(&module(None, "something_else")).unwrap();
        assert_eq!(problems(&m).len(), 1);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(interface(b"\0asm\x01\0\0\0\x02\x05\x01").is_err());
        assert!(interface(b"not wasm").is_err());
    }
}
