"""PicoStim firmware: a four-lead biphasic pulse generator on the RP2040's PIO."""

VERSION = "0.1.0"
MODEL = "PS-4"
