//! Generates the gRPC code from `proto/` with protox (pure Rust), so building
//! needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let fds = protox::compile(["quorumhouse.proto", "interserver.proto"], [&dir])?;
    tonic_prost_build::configure().compile_fds(fds)?;
    println!("cargo:rerun-if-changed={}", dir.display());
    Ok(())
}
