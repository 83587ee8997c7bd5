"""The work behind each CLI command: wires the core to the output (I/O edge)."""
