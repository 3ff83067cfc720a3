//! Checks on the committed header that the compiler cannot make (every function is
//! documented, and its documentation ends with the thread-safety rule), and on the panic
//! boundary, which no C test can reach without a bug.

use std::ffi::CStr;

use crate::context::{tw_context, with_ctx};
use crate::ffi::{guard, OK};
use crate::status::{tw_last_error, tw_status};

/// The committed header, as C programs see it.
const HEADER: &str = include_str!("../include/tidewire.h");

/// `(doc comment, prototype)` of every function declared in the header.
fn functions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut doc: Vec<&str> = Vec::new();
    let mut proto = String::new();
    for line in HEADER.lines() {
        let t = line.trim();
        if !proto.is_empty() {
            proto.push(' ');
            proto.push_str(t);
            if t.ends_with(';') {
                out.push((doc.join("\n"), std::mem::take(&mut proto)));
                doc.clear();
            }
            continue;
        }
        if let Some(rest) = t.strip_prefix("//") {
            doc.push(rest.trim());
        } else if declares_function(t) {
            proto.push_str(t);
            if t.ends_with(';') {
                out.push((doc.join("\n"), std::mem::take(&mut proto)));
                doc.clear();
            }
        } else {
            doc.clear();
        }
    }
    out
}

/// `tw_status tw_poll(...` or `const char *tw_version(void);` at the start of a line.
fn declares_function(line: &str) -> bool {
    if line.starts_with(['#', '*', '/']) || line.starts_with("typedef") {
        return false;
    }
    let Some(open) = line.find('(') else {
        return false;
    };
    let head = &line[..open];
    let name = head.rsplit([' ', '*']).next().unwrap_or("");
    name.starts_with("tw_") && head.len() > name.len()
}

#[test]
fn header_declares_the_whole_api() {
    let fns = functions();
    assert!(fns.len() >= 90, "only {} functions found", fns.len());
    for name in [
        "tw_poll",
        "tw_context_new",
        "tw_sender_wake",
        "tw_last_error",
        "tw_version",
    ] {
        assert!(
            fns.iter().any(|(_, p)| p.contains(&format!("{name}("))),
            "{name} missing from the header"
        );
    }
}

#[test]
fn every_function_ends_its_documentation_with_thread_safety() {
    for (doc, proto) in functions() {
        let last = doc.lines().rev().find(|l| !l.is_empty()).unwrap_or("");
        assert!(
            doc.contains("Thread safety:") && !doc[doc.rfind("Thread safety:").unwrap_or(0)..].contains("\n\n"),
            "{proto}: documentation must end with a \"Thread safety:\" paragraph (last line: {last:?})"
        );
    }
}

#[test]
fn every_function_with_pointers_documents_ownership_or_lifetime() {
    for (doc, proto) in functions() {
        let args = &proto[proto.find('(').unwrap_or(0)..];
        // Outputs, byte or text inputs, and returned pointers all raise the question.
        let hands_over =
            args.contains("out_") || args.contains("const uint8_t") || args.contains("const char");
        let returns_pointer = proto.split('(').next().unwrap_or("").contains('*');
        let mentions =
            doc.contains("Ownership") || doc.contains("Lifetime") || doc.contains("borrow");
        if hands_over || returns_pointer {
            assert!(mentions, "{proto}: say who owns what and for how long");
        }
    }
}

#[test]
fn every_status_constant_is_in_the_header() {
    for s in crate::status::tw_status::ALL {
        let name = format!("{s:?}");
        assert!(HEADER.contains(&name), "{name} missing from the header");
    }
}

fn last_error() -> String {
    // SAFETY: tw_last_error returns a NUL-terminated string valid until the next failure.
    unsafe { CStr::from_ptr(tw_last_error()) }
        .to_string_lossy()
        .into_owned()
}

#[test]
fn a_panic_becomes_internal_and_never_unwinds_into_c() {
    let status = guard(|| panic!("a bug"));
    assert_eq!(status, tw_status::TW_STATUS_INTERNAL);
    assert!(last_error().contains("internal error"));
}

#[test]
fn a_context_that_panicked_refuses_every_later_call_but_can_be_freed() {
    let mut ctx: *mut tw_context = std::ptr::null_mut();
    // SAFETY: valid out pointer; the handle is freed below.
    unsafe {
        assert_eq!(
            tw_context::tw_context_new(std::ptr::null(), &mut ctx),
            tw_status::TW_STATUS_OK
        );
        assert_eq!(
            with_ctx(ctx, |_| panic!("inside the runtime")),
            tw_status::TW_STATUS_INTERNAL
        );
        assert_eq!(with_ctx(ctx, |_| OK), tw_status::TW_STATUS_INTERNAL);
        assert!(last_error().contains("can only be freed"));
        tw_context::tw_context_free(ctx);
    }
}
