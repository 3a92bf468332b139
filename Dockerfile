# syntax=docker/dockerfile:1
# The ktes image for normal registries: `docker build -t REGISTRY/ktes:TAG .` (or podman/buildah).
# scripts/build-image.sh builds the same image on machines with no registry (a debootstrap'd base).
# It serves the API (`ktes serve`, the default command) and runs the stage-in/stage-out containers of task
# Pods (`python3 -m ktes.backends.kubernetes.podside ...`). The static helper the executors run through ships
# inside the ktes package (src/ktes/run/bin, built by tools/entrypoint/build); the server puts it in a
# ConfigMap of its namespace.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ktes and its dependencies as wheels.
FROM ${PYTHON_IMAGE} AS wheels
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN pip wheel --no-cache-dir --wheel-dir /wheels /src

FROM ${PYTHON_IMAGE}
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels ktes \
 && rm -rf /usr/local/lib/python3.11/site-packages/kubernetes/aio \
 && groupadd --gid 10001 ktes && useradd --uid 10001 --gid 10001 --home-dir /var/lib/ktes --no-create-home ktes \
 && mkdir -p /var/lib/ktes && chown 10001:10001 /var/lib/ktes
ENV PYTHONUNBUFFERED=1 LANG=C.UTF-8 KTES_DATA_DIR=/var/lib/ktes
ENTRYPOINT ["ktes"]
CMD ["serve"]
