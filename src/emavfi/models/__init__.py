"""Model registry, networks and checkpoint formats."""
