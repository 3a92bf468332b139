"""The run contract between a backend and the engine, the same for every backend.

- :mod:`.observations`: what a backend reports while running a task (the engine turns it into state).
- :mod:`.clock`: timestamps as TES writes them.
- :mod:`.result`: the record the executors' helper (``tools/entrypoint``) writes for each executor, and
  the files that order a run.
- :mod:`.outcome`: the one place that turns executor results and staging results into the task's final
  observations and the sentences users read.
- :mod:`.entrypoint`: where the executors' helper binary is for this machine.

Executors are numbered from 0 in every sentence, as in the TES ``executors[0]`` field names.
Backends and the CLI depend on this package; it depends on nothing but :mod:`ktes.tes`.
"""
