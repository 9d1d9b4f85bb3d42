//! TODO: eBPF sensor owned by the sensor work.
