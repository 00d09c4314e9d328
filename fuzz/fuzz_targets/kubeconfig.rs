//! Kubeconfig files come from users' disks: any bytes must give a config or an
//! error naming the file, never a panic or a hang. A config that loads must
//! print as JSON that loads again to the same config (the merge is idempotent).
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use paved_cluster::kubeconfig::parse_one;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = Path::new("fuzz.yaml");
    let Ok(config) = parse_one(path, text) else { return };
    let printed = config.to_kubectl_json();
    let again = parse_one(path, &printed).unwrap_or_else(|e| panic!("our own output does not load: {e}\n{printed}"));
    assert_eq!(again.to_kubectl_json(), printed, "printing is not stable");
});
