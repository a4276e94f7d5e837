"""PicoStim firmware entry point: runs the instrument until interrupted or reset."""

from stim.app import run

run()
