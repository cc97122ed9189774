"""Host runtime on the pynq API: drives a board or a simulated device with the same code."""
