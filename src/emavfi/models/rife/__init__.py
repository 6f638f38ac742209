"""The RIFE v4 family (Practical-RIFE v4.25 checkpoints)."""
