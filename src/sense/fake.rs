//! A scripted [`SensorFactory`] for unit tests of the pipeline: its sensor returns a given trace,
//! can fail to start or to finish, and writes `sensor start` / `sensor finish` into the same
//! call log as [`crate::docker::fake::FakeDocker`], so tests can check the cleanup order.

use std::sync::{Arc, Mutex};

use super::ptrace::{ChosenSensor, SensorChoice};
use super::{ContainerHooks, Sensor, SensorFactory, Trace};
use crate::{Error, Result};

#[derive(Debug, Default)]
pub struct FakeSensors {
    /// The trace the sensor returns.
    pub trace: Trace,
    /// Shared with the fake Docker's `calls`.
    pub log: Arc<Mutex<Vec<String>>>,
    pub fail_start: bool,
    pub fail_finish: bool,
}

fn failure(what: &str) -> Error {
    Error::Sensor {
        message: format!("scripted failure of {what}"),
        hint: String::new(),
    }
}

impl SensorFactory for FakeSensors {
    fn start(
        &self,
        _choice: SensorChoice,
        _endpoint: &str,
        run_name: &str,
        _image: &crate::docker::ImageSummary,
    ) -> Result<ChosenSensor> {
        self.log
            .lock()
            .unwrap()
            .push(format!("sensor start {run_name}"));
        if self.fail_start {
            return Err(failure("sensor start"));
        }
        Ok(ChosenSensor {
            sensor: Box::new(FakeSensor {
                trace: self.trace.clone(),
                log: self.log.clone(),
                fail_finish: self.fail_finish,
            }),
            reason: "a fake".into(),
        })
    }
}

struct FakeSensor {
    trace: Trace,
    log: Arc<Mutex<Vec<String>>>,
    fail_finish: bool,
}

impl Sensor for FakeSensor {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn container_hooks(&self) -> ContainerHooks {
        ContainerHooks::default()
    }

    fn finish(self: Box<Self>) -> Result<Trace> {
        self.log.lock().unwrap().push("sensor finish".into());
        if self.fail_finish {
            return Err(failure("sensor finish"));
        }
        Ok(self.trace)
    }
}
