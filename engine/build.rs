//! Generates the gRPC client and server for KEDA's external scaler protocol
//! (proto/externalscaler.proto) with a pure-Rust protobuf compiler (protox): no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/externalscaler.proto");
    let fds = protox::compile(["proto/externalscaler.proto"], ["proto"])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(fds)?;
    Ok(())
}
