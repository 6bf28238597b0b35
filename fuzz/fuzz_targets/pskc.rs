//! PSKC files (RFC 6030), as `caducee token import` reads them: parse with the key the file asks
//! for (RFC 6030's example pre-shared key or passphrase), import into the directory, then
//! check a code against each imported token, which runs the TOTP/HOTP window arithmetic on the
//! file's counter, time origin, step and drift. Nothing may panic, whatever the file says.
#![no_main]

use authn_methods::hardware::{HardwareTokenMethod, Windows, import_at};
use authn_methods::pskc::{ContainerKey, parse};
use caducee_fuzz::{NOW, harness, text};
use libfuzzer_sys::fuzz_target;
use zeroize::Zeroizing;

/// RFC 6030 Figure 6's pre-shared key and Figure 7's passphrase.
const PRESHARED: [u8; 16] =
    [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56, 0x78, 0x90, 0x12];
const PASSPHRASE: &str = "qwerty";

fuzz_target!(|data: &[u8]| {
    let Some(xml) = text(data) else { return };
    let unlock = if xml.contains("DerivedKey") {
        ContainerKey::Passphrase(Zeroizing::new(PASSPHRASE.into()))
    } else if xml.contains("KeyName") {
        ContainerKey::PreShared(Zeroizing::new(PRESHARED.to_vec()))
    } else {
        ContainerKey::None
    };
    let Ok(keys) = parse(xml, &unlock) else { return };
    let h = harness();
    let directory = h.app.directory.clone();
    h.block_on(async move {
        let Ok(tokens) = import_at(&directory, keys, NOW).await else { return };
        let method = HardwareTokenMethod::new(directory.clone(), Windows::default());
        for token in &tokens {
            let digits = usize::try_from(token.params["digits"].as_u64().unwrap_or(6)).unwrap_or(6);
            let code = "1".repeat(digits);
            // One code (the look-ahead window), then two (the resynchronisation window).
            let _ = method.verify(token, &code, NOW).await;
            let _ = method.verify(token, &format!("{code} {code}"), NOW).await;
        }
        // Serials must be free again for the next input.
        for token in tokens {
            let _ = directory.authenticators().delete(&token.id).await;
        }
    });
});
