"""The engine: the only writer of task state. Dispatches, applies observations, cancels, recovers."""
