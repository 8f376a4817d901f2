//! Connection tests: see sim.rs for the scenario suite.
