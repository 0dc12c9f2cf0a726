"""Scripted, replayable sessions on virtual time: the format (format.py), the rig that plays a
scenario against every emulator and the host (rig.py), the money checks (checks.py) and the
runner behind `till scenario run` (runner.py). The catalogue is sim/scenarios/."""
