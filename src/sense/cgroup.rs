//! TODO: cgroup handling owned by the sensor work.
