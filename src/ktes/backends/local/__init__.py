"""Running tasks on this machine with podman or docker."""
