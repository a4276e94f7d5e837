"""Cycle-exact RP2040 PIO state-machine execution for the virtual board."""

from .executor import (
    GPIO_COUNT,
    ConstantInputs,
    DmaFeed,
    InputTimeline,
    StateMachine,
    StepInputs,
)

__all__ = [
    "GPIO_COUNT",
    "ConstantInputs",
    "DmaFeed",
    "InputTimeline",
    "StateMachine",
    "StepInputs",
]
