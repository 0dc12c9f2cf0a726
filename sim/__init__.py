"""The emulated world: where the till (terminal/) and the emulators (emulator/) meet. The wiring
of emulated terminals (wiring.py), the services behind the CLI (services.py), the demo (demo.py)
and the scenario runner (scenario/, catalogue in scenarios/). terminal/ never imports this."""
