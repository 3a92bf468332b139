"""The Kubernetes backend: one Job with one Pod per task.

The Pod (the contract between :mod:`.podspec`, the pod-side commands and the engine side):

volumes
    ``workspace``   emptyDir (sizeLimit from ``disk_gb``) or a generic ephemeral volume
                    (``k8s_storage_class``); container path P of the task lives at ``workspace/P``
                    (:mod:`ktes.tes.layout`).
    ``ktes-tools``  emptyDir: the static entrypoint helper and the executors' state files.
    ``ktes-spec``   the Secret ``<job-name>`` with key ``task.json`` (the task document).

init container ``stage-in`` (image ``k8s_image``)
    ``ktes pod stage-in --task /ktes/spec/task.json --workspace /ktes/workspace --tools /ktes/tools``:
    copies the entrypoint helper to ``/ktes/tools/entrypoint``, prepares the workspace, downloads inputs.
    On failure: a plain sentence in its termination message, exit 1 (the Pod fails; SYSTEM_ERROR).

init container ``executor-<i>`` per executor, in order (the user's image; no shell needed)
    ``/ktes/tools/entrypoint --index i --state-dir /ktes/tools/state [--stdin P] [--stdout P]
    [--stderr P] [--ignore-error] -- CMD...``, the task's workdir and env, each mount point of
    :func:`ktes.tes.layout.mount_points` as a ``subPath`` of ``workspace``, ``ktes-tools`` at ``/ktes/tools``.
    The helper runs CMD with stdin/stdout/stderr wired to the files (stdout/stderr default to
    ``state/<i>.stdout`` / ``state/<i>.stderr``), writes ``state/<i>.json`` (:class:`report.ExecutorResult`),
    and exits 0 so the Pod goes on; after a failure without ignore_error it writes ``state/stop`` and later
    executors exit 0 at once without running.

main container ``stage-out`` (image ``k8s_image``)
    ``ktes pod stage-out --task ... --workspace ... --tools ...``: reads the state files, uploads the
    outputs when the executors succeeded, and prints one line of JSON, a :class:`report.PodReport`, as
    the last line of its log. The engine side reads it through ``pods/log``.
"""
