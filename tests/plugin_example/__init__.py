"""An example third-party device plugin, kept as test data (tests/system/test_plugins.py installs it)."""
