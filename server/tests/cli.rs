//! The command line: `mint-token` refuses a TTL whose expiry does not fit, instead of
//! overflowing (a panic in debug builds, a wrapped, already-expired token in release).

use std::process::Command;

#[test]
fn mint_token_rejects_an_overflowing_ttl() {
    let bin = env!("CARGO_BIN_EXE_opfs-media-server");
    let out = Command::new(bin)
        .args([
            "--auth",
            "hmac",
            "--secret",
            "0123456789abcdef0123",
            "mint-token",
            "alice",
            "--ttl",
            "18446744073709551615",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "accepted: {}", String::from_utf8_lossy(&out.stdout));
    assert!(stderr.contains("--ttl is too large"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let ok = Command::new(bin)
        .args(["--auth", "hmac", "--secret", "0123456789abcdef0123", "mint-token", "alice", "--ttl", "60"])
        .output()
        .unwrap();
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).starts_with("alice."));
}
