"""PicoStim firmware entry point: runs the instrument until interrupted or reset."""

# The leads' DMA rings need one large aligned block: take it first, while the heap is empty.
from stim.ringpool import RingPool

rings = RingPool()

# Loading the firmware leaves its long-lived objects interleaved with freed import buffers,
# and later file reads need contiguous blocks. Holding this block through the loading and
# freeing it once everything is built leaves one large free region behind.
reserve = [bytearray(16 * 1024)]

from stim.app import run  # noqa: E402

run(reserve=reserve, rings=rings)
