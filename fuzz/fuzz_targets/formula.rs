#![no_main]
libfuzzer_sys::fuzz_target!(|input: swell_fuzz::FormulaInput| swell_fuzz::formula(input));
