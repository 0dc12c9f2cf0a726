"""The printer emulator: reception and flow control (emulator.py), paper (paper.py), faults
(faults.py), rendering to text and PNG (render.py, draw.py) and its control vocabulary (control.py)."""
