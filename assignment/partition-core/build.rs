//! Compiles `proto/journal/v1/*.proto` (the same files the Python side generates from) into Rust
//! with prost. protox parses them in pure Rust, so no `protoc` binary is needed.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["journal/v1/records.proto", "journal/v1/snapshot.proto"];
    for file in files {
        println!("cargo:rerun-if-changed={}", root.join(file).display());
    }
    let descriptors = protox::compile(files, [&root])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
