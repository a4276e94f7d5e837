"""Virtual PicoStim board: the unmodified board code on simulated RP2040 hardware."""

from picostim.sim.virtual_board import VirtualBoard, VirtualBoardError

__all__ = ["VirtualBoard", "VirtualBoardError"]
