//! Device choice: CUDA when libtorch was linked with it and a GPU is visible, else CPU.
use tch::Device;

/// `auto` picks CUDA when available; `cpu` and `cuda[:N]` are explicit.
pub fn parse_device(name: &str) -> Result<Device, String> {
    match name {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" => Ok(Device::Cuda(0)),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(i)) => Ok(Device::Cuda(i)),
            _ => Err(format!(
                "unknown device '{other}': expected auto, cpu, cuda or cuda:N"
            )),
        },
    }
}
