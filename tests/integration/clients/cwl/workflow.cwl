#!/usr/bin/env cwl-runner
# Three CommandLineTools, three TES tasks: echo; cat of its output and a file of the user's; wc -l of that (stdin).
cwlVersion: v1.0
class: Workflow
hints:
  DockerRequirement:
    dockerPull: localhost/ktes-test/busybox:1
inputs:
  message: string
  extra: File
outputs:
  combined:
    type: File
    outputSource: concat/out
  lines:
    type: File
    outputSource: count/lines
steps:
  say:
    run: echo.cwl
    in: {message: message}
    out: [said]
  concat:
    run: cat.cwl
    in: {first: say/said, second: extra}
    out: [out]
  count:
    run: wc.cwl
    in: {text: concat/out}
    out: [lines]
