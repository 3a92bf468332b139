cwlVersion: v1.0
class: CommandLineTool
hints:
  DockerRequirement:
    dockerPull: localhost/ktes-test/busybox:1
baseCommand: cat
inputs:
  first:
    type: File
    inputBinding: {position: 1}
  second:
    type: File
    inputBinding: {position: 2}
outputs:
  out: stdout
stdout: combined.txt
