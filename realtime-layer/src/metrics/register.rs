//! One way to register an observable instrument: a name, a description and a function of the
//! core, called at collection time while the instance is alive (a `Weak`, so registering never
//! keeps an instance alive and a dropped one simply reports nothing).

use crate::core::Core;
use opentelemetry::metrics::{AsyncInstrument, Meter};
use std::any::Any;
use std::borrow::Cow;
use std::sync::Weak;

/// What an observable instrument reports: a counter (monotonic since start) or a gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
}

/// Registers instruments on one meter and keeps their handles.
pub(super) struct Registrar<'a> {
    meter: &'a Meter,
    core: &'a Weak<Core>,
    kept: &'a mut Vec<Box<dyn Any + Send + Sync>>,
}

impl<'a> Registrar<'a> {
    pub(super) fn new(
        meter: &'a Meter,
        core: &'a Weak<Core>,
        kept: &'a mut Vec<Box<dyn Any + Send + Sync>>,
    ) -> Self {
        Registrar { meter, core, kept }
    }

    /// The meter, for instruments that are not observable (histograms).
    pub(super) fn meter(&self) -> &Meter {
        self.meter
    }

    /// An integer counter or gauge whose value `observe` reports from the core.
    pub(super) fn u64(
        &mut self,
        kind: Kind,
        name: impl Into<Cow<'static, str>>,
        description: impl Into<Cow<'static, str>>,
        observe: impl Fn(&Core, &dyn AsyncInstrument<u64>) + Send + Sync + 'static,
    ) {
        let callback = with_core(self.core.clone(), observe);
        let (name, description) = (name.into(), description.into());
        let handle: Box<dyn Any + Send + Sync> = match kind {
            Kind::Counter => Box::new(
                self.meter
                    .u64_observable_counter(name)
                    .with_description(description)
                    .with_callback(callback)
                    .build(),
            ),
            Kind::Gauge => Box::new(
                self.meter
                    .u64_observable_gauge(name)
                    .with_description(description)
                    .with_callback(callback)
                    .build(),
            ),
        };
        self.kept.push(handle);
    }

    /// A floating-point gauge in `unit` whose value `observe` reports from the core.
    pub(super) fn f64_gauge(
        &mut self,
        name: &'static str,
        unit: &'static str,
        description: &'static str,
        observe: impl Fn(&Core, &dyn AsyncInstrument<f64>) + Send + Sync + 'static,
    ) {
        let callback = with_core(self.core.clone(), observe);
        self.kept.push(Box::new(
            self.meter
                .f64_observable_gauge(name)
                .with_unit(unit)
                .with_description(description)
                .with_callback(callback)
                .build(),
        ));
    }

    /// A floating-point counter whose value `observe` reports from the core.
    pub(super) fn f64_counter(
        &mut self,
        name: &'static str,
        description: &'static str,
        observe: impl Fn(&Core, &dyn AsyncInstrument<f64>) + Send + Sync + 'static,
    ) {
        let callback = with_core(self.core.clone(), observe);
        self.kept.push(Box::new(
            self.meter
                .f64_observable_counter(name)
                .with_description(description)
                .with_callback(callback)
                .build(),
        ));
    }
}

/// `observe` called with the core while it lives; nothing once it is gone.
fn with_core<T>(
    core: Weak<Core>,
    observe: impl Fn(&Core, &dyn AsyncInstrument<T>) + Send + Sync + 'static,
) -> impl Fn(&dyn AsyncInstrument<T>) + Send + Sync + 'static {
    move |obs| {
        if let Some(core) = core.upgrade() {
            observe(&core, obs);
        }
    }
}
