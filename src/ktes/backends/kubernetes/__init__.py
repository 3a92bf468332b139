"""The Kubernetes backend: one Job with one Pod per task.

The Pod (the contract between :mod:`.podspec`, the pod-side commands, the entrypoint helper and the engine):

volumes
    ``workspace``   emptyDir (sizeLimit from ``disk_gb``) or a generic ephemeral volume
                    (``k8s_storage_class``); container path P of the task lives at ``workspace/P``
                    (:mod:`ktes.tes.layout`).
    ``ktes-state``  emptyDir at ``/ktes/state``: the files that keep the containers in order
                    (:mod:`ktes.run.result`: ``stage-in.done``, ``stage-in.failed``, ``<i>.json``, ``stop``) and the
                    executors' default stdout/stderr files.
    ``ktes-bin``    the namespace's ConfigMap ``ktes-entrypoint-<sha12>`` (the static helper, mode 0555),
                    read-only at ``/ktes/bin`` in the executors.
    ``ktes-spec``   the Secret ``<job-name>`` with key ``task.json`` (the task document).

Every container is a regular container and they all start together (init containers would each cost the
kubelet's ~1 s status relist); the order is kept through the files in ``ktes-state``:

``stage-in`` (image ``k8s_image``; only when the task has inputs, or a storage class)
    ``python3 -m ktes.backends.kubernetes.podside stage-in --task /ktes/spec/task.json --workspace
    /ktes/workspace --state /ktes/state``: prepares the workspace, downloads inputs, writes
    ``stage-in.done``. On failure: ``stage-in.failed`` and a plain sentence in its termination message, exit 1
    (the engine ends the task with SYSTEM_ERROR at once).

``executor-<i>`` per executor (the user's image; no shell needed)
    ``/ktes/bin/ktes-entrypoint --index i --state-dir /ktes/state [--wait stage-in.done] [--wait <i-1>.json]
    --tail-bytes N --termination-log /dev/termination-log --termination-limit L [--stdin P] [--stdout P]
    [--stderr P] [--ignore-error] -- CMD...``, the task's workdir
    and env, each mount point of :func:`ktes.tes.layout.mount_points` as a ``subPath`` of ``workspace``.
    The helper waits for its turn (or leaves, exit 0, when ``stop`` or ``stage-in.failed`` appears), runs
    CMD with stdin/stdout/stderr wired to the files (stdout/stderr default to ``state/<i>.stdout`` /
    ``state/<i>.stderr``), writes ``stop`` (after a failure without ignore_error) and then ``<i>.json``
    (:class:`ktes.run.result.ExecutorResult`), prints ``KTES-RESULT {json}``
    (:class:`ktes.run.result.ExecutorReport`: the result and the tails of both streams) as the last line of
    its log; once CMD has ended, it kills what CMD left running (as PID 1) and writes the same line as the
    container's termination message when it fits in L bytes (the kubelet's share for this Pod, see
    :func:`ktes.run.result.termination_limit`), else an empty one; then exits 0. The engine takes the line
    from the termination message, which the Pod watch brings; it reads it through ``pods/log`` only when
    the message is not exactly that line (too long, cut, or written by an older helper).

``stage-out`` (image ``k8s_image``; only when the task has outputs)
    ``python3 -m ktes.backends.kubernetes.podside stage-out ...``: waits for the last executor's result (or
    ``stop`` / ``stage-in.failed``), uploads the outputs when the executors succeeded, and prints
    ``KTES-REPORT {json}`` (:class:`ktes.run.result.StageOutReport`) as the last line of its log, and as its
    termination message too when it fits.
"""
