"""The TES 1.1 domain: types, states, validation and views. Pure: no I/O."""
