"""The long-running terminal: `till run`, its payment API, health."""
