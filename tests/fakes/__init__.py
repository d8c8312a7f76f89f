"""Loopback fakes of external runtimes for tests: `FakeSidecar` stands in for the Dapr sidecar."""

from tests.fakes.sidecar import (
    DeadLetter,
    Delivery,
    FailurePolicy,
    FakeSidecar,
    Job,
    JobCall,
    JobRun,
    Published,
    PumpedDelivery,
    PumpReport,
    Received,
    Settled,
    Subscription,
    UnsupportedCEL,
    outcome_of,
)

__all__ = [
    "DeadLetter",
    "Delivery",
    "FailurePolicy",
    "FakeSidecar",
    "Job",
    "JobCall",
    "JobRun",
    "Published",
    "PumpReport",
    "PumpedDelivery",
    "Received",
    "Settled",
    "Subscription",
    "UnsupportedCEL",
    "outcome_of",
]
