"""The one pin map of PicoStim (GPIO numbers of the Raspberry Pi Pico).

Nothing else in the firmware names a GPIO number; the virtual board and the hardware docs
read this file too (it holds only constants, so CPython can execute it as well).

Each lead uses two adjacent pins: phase 1 (A) and phase 2 (B) of its biphasic pulse, driven by
the lead's PIO state machine. Every output has a 100 kohm pull-down on the board, so at
power-up, before any code runs, all gates read low (rest).
"""

# Lead outputs: phase-1 pin of each lead; its phase-2 pin is the next GPIO.
LEAD_A = (2, 4, 6, 8)
LEAD_B = (3, 5, 7, 9)
# Scope trigger output: a pulse at each train start.
SYNC = 10
# Per-lead ARM lines, driven by the CPU and read back by the lead's state machine at each
# pulse start: a lead only starts a pulse while its ARM line is high. They also light the
# lead's "enabled" LED.
ARM = (11, 12, 13, 14)
# External trigger input (3.3 V logic, 10 kohm pull-down).
TRIGGER = 15
# Safety interlock loop: closed = high (the loop ties the pin to 3V3); an open loop or a
# broken wire reads low through the pull-down: fail-safe.
INTERLOCK = 16
# On/off push button to GND, internal pull-up: pressed reads 0.
BUTTON = 17
# I2C0 to the MCP4728 quad DAC that sets each lead's current.
I2C_ID = 0
I2C_SDA = 20
I2C_SCL = 21
DAC_ADDR = 0x60
# Status LED (on the Pico board).
LED = 25

# Names of the outputs as captures and docs call them.
OUTPUT_NAMES = (
    ("ch1_a", 2),
    ("ch1_b", 3),
    ("ch2_a", 4),
    ("ch2_b", 5),
    ("ch3_a", 6),
    ("ch3_b", 7),
    ("ch4_a", 8),
    ("ch4_b", 9),
    ("sync", 10),
    ("arm1", 11),
    ("arm2", 12),
    ("arm3", 13),
    ("arm4", 14),
    ("led", 25),
)
# Inputs a capture records too, so it shows what started or stopped a train.
CAPTURED_INPUTS = (
    ("trigger", 15),
    ("interlock", 16),
)
