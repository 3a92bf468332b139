"""Backends run tasks. Each is one module (or package) behind :class:`ktes.backends.base.Backend`."""
