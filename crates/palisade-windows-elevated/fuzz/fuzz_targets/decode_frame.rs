//! Feeds arbitrary bytes to every decoding entry point of the CLI/runner protocol.
//! `fuzz_one` panics when an invariant breaks (a decoded frame that does not re-encode to the
//! same bytes, the one-shot and incremental decoders disagreeing, a multi-line error).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    palisade_windows_elevated::protocol::fuzz_one(data);
});
