//! `huifang softphone` registers with digest authentication — to huifang's
//! built-in registrar (MD5, and SHA-256 when that is all it offers) and to
//! Kamailio — and withdraws the binding when it exits; a wrong password
//! never registers and the phone says so with its exit code.

use crate::common;

use std::time::Duration;

use common::huifang::Huifang;
use common::kamailio;
use common::softphone::Phone;

fn registrar(algorithms: &str) -> String {
    format!(
        "[sip.registrar]\ndigest_algorithms = {algorithms}\n\n[[sip.users]]\nname = \"agent1\"\npassword = \"agent1-test-secret\"\n"
    )
}

fn registers_to_builtin(algorithms: &str) {
    let h = Huifang::start("", &registrar(algorithms));
    let phone = Phone::spawn(
        &[
            "--registrar",
            &format!("sip:{}", h.addr),
            "--user",
            "agent1",
            "--password-env",
            "PHONE_PW",
            "--seconds",
            "2",
        ],
        &[("PHONE_PW", "agent1-test-secret")],
    );
    let done = phone.wait(Duration::from_secs(15));
    assert_eq!(done.code, Some(0), "{done:#?}\nhuifang:\n{}", h.log());
    assert!(done.log.contains("softphone registered"), "{}", done.log);
    assert!(h.wait_log("softphone registered", Duration::from_secs(2)), "{}", h.log());
    // Unregistered at exit: the binding is removed, not left to expire.
    assert!(h.wait_log("softphone unregistered", Duration::from_secs(2)), "{}", h.log());
}

#[test]
fn registers_to_the_builtin_registrar_with_md5() {
    registers_to_builtin(r#"["MD5"]"#);
}

#[test]
fn registers_to_the_builtin_registrar_with_sha256() {
    registers_to_builtin(r#"["SHA-256"]"#);
}

#[test]
fn a_wrong_password_never_registers() {
    let h = Huifang::start("", &registrar(r#"["MD5"]"#));
    let phone = Phone::spawn(
        &[
            "--registrar",
            &format!("sip:{}", h.addr),
            "--user",
            "agent1",
            "--password-env",
            "PHONE_PW",
            "--seconds",
            "3",
        ],
        &[("PHONE_PW", "wrong")],
    );
    let done = phone.wait(Duration::from_secs(15));
    assert_eq!(done.code, Some(1), "{done:#?}");
    assert!(done.log.contains("never registered"), "{}", done.log);
    assert!(done.log.contains("403"), "the refusal is logged: {}", done.log);
    assert_eq!(h.count_log("softphone registered"), 0, "{}", h.log());
    // The password never reaches the log.
    assert!(!done.log.contains("agent1-test-secret") && !done.log.contains("wrong\""));
}

#[test]
fn registers_to_kamailio_and_unregisters_at_exit() {
    let k = kamailio();
    let phone = Phone::spawn(
        &[
            "--registrar",
            &format!("sip:{}", k.hostport()),
            "--user",
            "phone1",
            "--password-env",
            "PHONE_PW",
            "--seconds",
            "4",
        ],
        &[("PHONE_PW", "phone1-test-secret")],
    );
    let b = k.wait_bindings("phone1", Duration::from_secs(5), |b| !b.is_empty());
    assert!(!b.is_empty(), "no binding for phone1 in Kamailio:\n{}", k.log());
    let done = phone.wait(Duration::from_secs(15));
    assert_eq!(done.code, Some(0), "{done:#?}");
    assert!(k.bindings("phone1").is_empty(), "binding left behind after exit: {:?}", k.bindings("phone1"));
}

#[test]
fn sigterm_ends_the_phone_cleanly_and_unregisters() {
    let h = Huifang::start("", &registrar(r#"["MD5"]"#));
    let phone = Phone::spawn(
        &["--registrar", &format!("sip:{}", h.addr), "--user", "agent1", "--password-env", "PHONE_PW"],
        &[("PHONE_PW", "agent1-test-secret")],
    );
    assert!(h.wait_log("softphone registered", Duration::from_secs(5)), "{}", h.log());
    let started = std::time::Instant::now();
    let done = phone.terminate(Duration::from_secs(10));
    assert_eq!(done.code, Some(0), "{done:#?}");
    assert!(started.elapsed() < Duration::from_secs(6), "stopping took {:?}", started.elapsed());
    assert!(h.wait_log("softphone unregistered", Duration::from_secs(2)), "{}", h.log());
}
