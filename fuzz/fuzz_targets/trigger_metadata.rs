#![no_main]
libfuzzer_sys::fuzz_target!(|input: swell_fuzz::TriggerInput| swell_fuzz::trigger_metadata(input));
