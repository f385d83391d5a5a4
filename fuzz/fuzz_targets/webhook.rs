#![no_main]
libfuzzer_sys::fuzz_target!(|input: swell_fuzz::WebhookInput| swell_fuzz::webhook(input));
